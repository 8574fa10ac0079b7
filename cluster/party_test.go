package cluster_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"partyline/internal/testutil"
	"partyline/server"
)

type M = map[string]any

func party(t testing.TB, s *server.Server) *testutil.Client {
	return testutil.Dial(t, testutil.URL(s, 0, "/party"))
}

func createRoom(t testing.TB, c *testutil.Client, id string, max int) (code, token string) {
	t.Helper()
	req := M{"type": "create", "clientId": id}
	if max > 0 {
		req["maxClients"] = max
	}
	c.Send(req)
	m := c.Expect("created")
	return m.Str("room"), m.Str("token")
}

func joinRoom(t testing.TB, c *testutil.Client, id, code string) testutil.Msg {
	t.Helper()
	c.Send(M{"type": "join", "clientId": id, "room": code})
	return c.Expect("joined")
}

func clients(m testutil.Msg) []string {
	var out []string
	for _, x := range m["clients"].([]any) {
		out = append(out, x.(string))
	}
	return out
}

// aliceAndBob has alice create a room on node a and bob join it on node b
// (alice hears of it); it returns their clients and the room code.
func aliceAndBob(t testing.TB, a, b *server.Server) (ca, cb *testutil.Client, code string) {
	t.Helper()
	ca = party(t, a)
	code, _ = createRoom(t, ca, "alice", 0)
	cb = party(t, b)
	joinRoom(t, cb, "bob", code)
	ca.Expect("peer_joined")
	return ca, cb, code
}

func TestPartyAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)

	ca := party(t, a)
	code, _ := createRoom(t, ca, "alice", 0)

	cb := party(t, b)
	j := joinRoom(t, cb, "bob", code)
	if got := clients(j); !slices.Equal(got, []string{"alice", "bob"}) {
		t.Fatalf("joined clients %v", got)
	}
	if m := ca.Expect("peer_joined"); m.Str("clientId") != "bob" {
		t.Fatalf("peer_joined %v", m)
	}

	// Broadcast both ways.
	ca.Send(M{"type": "send", "data": M{"n": 1}})
	if m := cb.Expect("message"); m.Str("from") != "alice" || m["data"].(map[string]any)["n"] != 1.0 {
		t.Fatalf("B got %v", m)
	}
	cb.Send(M{"type": "send", "data": "hi"})
	if m := ca.Expect("message"); m.Str("from") != "bob" || m["data"] != "hi" {
		t.Fatalf("A got %v", m)
	}

	// A third member on A; targeted sends across nodes.
	cc := party(t, a)
	if got := clients(joinRoom(t, cc, "carol", code)); !slices.Equal(got, []string{"alice", "bob", "carol"}) {
		t.Fatalf("carol joined with %v", got)
	}
	ca.Expect("peer_joined")
	cb.Expect("peer_joined")
	cb.Send(M{"type": "send", "data": "to carol", "to": "carol"})
	if m := cc.Expect("message"); m["data"] != "to carol" || m.Str("from") != "bob" {
		t.Fatalf("carol got %v", m)
	}
	cc.Send(M{"type": "send", "data": "to bob", "to": "bob"})
	if m := cb.Expect("message"); m["data"] != "to bob" || m.Str("from") != "carol" {
		t.Fatalf("bob got %v", m)
	}
	// (alice's next message below is the state: the targeted sends reached only their target)
	cb.Send(M{"type": "send", "data": 1, "to": "nobody"})
	if m := cb.Expect("error"); m.Str("message") != "Target client not found" {
		t.Fatalf("unknown target: %v", m)
	}

	// Retained state: set on B, every member gets it, a later joiner too.
	cb.Send(M{"type": "set_state", "state": M{"round": 2}})
	for _, c := range []*testutil.Client{ca, cb, cc} {
		if m := c.Expect("state"); m["state"].(map[string]any)["round"] != 2.0 {
			t.Fatalf("state %v", m)
		}
	}
	cd := party(t, b)
	joinRoom(t, cd, "dave", code)
	if m := cd.Expect("state"); m["state"].(map[string]any)["round"] != 2.0 {
		t.Fatalf("joiner's state %v", m)
	}
	for _, c := range []*testutil.Client{ca, cb, cc} {
		c.Expect("peer_joined")
	}

	// The registry answers on every node.
	for _, s := range []*server.Server{a, b} {
		st, m := getJSON(t, testutil.HTTPURL(s, "/api/rooms/"+code))
		if st != 200 || m["members"] != 4.0 || m["maxClients"] != 1000.0 {
			t.Fatalf("GET /api/rooms: %d %v", st, m)
		}
	}

	// Leave on B and disconnect on A: peer_left everywhere.
	cb.Send(M{"type": "leave"})
	for _, c := range []*testutil.Client{ca, cc, cd} {
		if m := c.Expect("peer_left"); m.Str("clientId") != "bob" {
			t.Fatalf("peer_left %v", m)
		}
	}
	cc.Conn.Close()
	for _, c := range []*testutil.Client{ca, cd} {
		if m := c.Expect("peer_left"); m.Str("clientId") != "carol" {
			t.Fatalf("peer_left %v", m)
		}
	}
	ca.Conn.Close()
	cd.Conn.Close()
	for _, s := range []*server.Server{a, b} {
		s := s
		await(t, 5*time.Second, "room deleted", func() bool {
			st, _ := getJSON(t, testutil.HTTPURL(s, "/api/rooms/"+code))
			return st == 404
		})
	}
	// The code is free again: a join says so on either node.
	ce := party(t, b)
	ce.Send(M{"type": "join", "clientId": "eve", "room": code})
	if m := ce.Expect("error"); m.Str("message") != "Room not found" {
		t.Fatalf("join of a deleted room: %v", m)
	}
}

func TestPartyFullAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	nodes := []*server.Server{node(t, ns.url, "a", nil), node(t, ns.url, "b", nil), node(t, ns.url, "c", nil)}
	owner := party(t, nodes[0])
	const max, joiners = 5, 24
	code, _ := createRoom(t, owner, "owner", max)

	var conns []*testutil.Client
	for i := 0; i < joiners; i++ {
		conns = append(conns, party(t, nodes[i%len(nodes)]))
	}
	results := make([]string, joiners)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Send(M{"type": "join", "clientId": fmt.Sprintf("j%d", i), "room": code})
			for {
				m, err := c.TryRead(10 * time.Second)
				if err != nil {
					results[i] = "read error: " + err.Error()
					return
				}
				switch m.Str("type") {
				case "joined":
					results[i] = "joined"
					return
				case "error":
					results[i] = m.Str("message")
					return
				}
			}
		}()
	}
	wg.Wait()
	joined := 0
	for i, r := range results {
		switch r {
		case "joined":
			joined++
		case "Room is full":
		default:
			t.Errorf("joiner %d: %q", i, r)
		}
	}
	if joined != max-1 {
		t.Fatalf("%d joined a room of %d with one member: want %d", joined, max, max-1)
	}
	st, m := getJSON(t, testutil.HTTPURL(nodes[1], "/api/rooms/"+code))
	if st != 200 || m["members"] != float64(max) {
		t.Fatalf("GET /api/rooms: %d %v", st, m)
	}
}

func TestPartyReplaceAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)
	host := party(t, a)
	code, _ := createRoom(t, host, "host", 0)
	old := party(t, a)
	token := joinRoom(t, old, "player", code).Str("token")
	host.Expect("peer_joined")

	// A wrong token is refused and changes nothing.
	bad := party(t, b)
	bad.Send(M{"type": "join", "clientId": "player", "room": code, "token": "wrong"})
	if m := bad.Expect("error"); m.Str("message") != "invalid token for this clientId" {
		t.Fatalf("wrong token: %v", m)
	}

	// The same clientId with its token on node B replaces the socket on A.
	fresh := party(t, b)
	fresh.Send(M{"type": "join", "clientId": "player", "room": code, "token": token})
	j := fresh.Expect("joined")
	if got := clients(j); !slices.Equal(got, []string{"host", "player"}) || j.Str("token") != token {
		t.Fatalf("re-join: %v", j)
	}
	old.ExpectClose(4000)

	host.Send(M{"type": "send", "data": "still there?", "to": "player"})
	if m := fresh.Expect("message"); m["data"] != "still there?" {
		t.Fatalf("targeted send after replacement: %v", m)
	}
	fresh.Send(M{"type": "send", "data": "yes"})
	// The host's next message is this one: no peer_left / peer_joined for a replacement.
	if m := host.Expect("message"); m["data"] != "yes" {
		t.Fatalf("send after replacement: %v", m)
	}
	st, m := getJSON(t, testutil.HTTPURL(a, "/api/rooms/"+code))
	if st != 200 || m["members"] != 2.0 {
		t.Fatalf("members after replacement: %d %v", st, m)
	}
}

func TestPartyCodesUniqueAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	mut := func(c *server.Config) { c.Party.CodeLength = 3 } // 29,791 codes: collisions are likely without the registry
	nodes := []*server.Server{node(t, ns.url, "a", mut), node(t, ns.url, "b", mut)}
	const perNode = 150
	codes := make([][]string, len(nodes))
	var wg sync.WaitGroup
	for i, s := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Rooms stay open (their creators connected) while the others are made.
			for k := 0; k < perNode; k++ {
				c := party(t, s)
				c.Send(M{"type": "create", "clientId": "c"})
				m, err := c.TryRead(10 * time.Second)
				if err != nil || m.Str("type") != "created" {
					t.Errorf("create: %v %v", m, err)
					return
				}
				codes[i] = append(codes[i], m.Str("room"))
			}
		}()
	}
	wg.Wait()
	seen := map[string]bool{}
	for _, cs := range codes {
		for _, c := range cs {
			if seen[c] {
				t.Fatalf("code %s given twice", c)
			}
			seen[c] = true
		}
	}
	if len(seen) != perNode*len(nodes) {
		t.Fatalf("%d codes", len(seen))
	}
}
