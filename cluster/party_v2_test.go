package cluster_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/internal/testutil"
	"partyline/server"
)

// partyV2 dials the party-v2 dialect of node s.
func partyV2(t testing.TB, s *server.Server) *testutil.Client {
	return testutil.Dial(t, testutil.URL(s, 0, "/party-v2"))
}

// v2Raw reads c's next frame as text, exactly as sent.
func v2Raw(t testing.TB, c *testutil.Client) string {
	t.Helper()
	_ = c.Conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	typ, b, err := c.Conn.ReadMessage()
	if err != nil || typ != websocket.TextMessage {
		t.Fatalf("read: %d %v", typ, err)
	}
	return string(b)
}

func v2Index(m testutil.Msg) int {
	v, _ := m["index"].(float64)
	return int(v)
}

func v2Peers(m testutil.Msg) []int {
	var out []int
	for _, x := range m["peers"].([]any) {
		out = append(out, int(x.(float64)))
	}
	return out
}

func v2Join(t testing.TB, s *server.Server, code, id string) (*testutil.Client, testutil.Msg) {
	t.Helper()
	c := partyV2(t, s)
	c.Send(M{"type": "join", "clientId": id, "room": code})
	return c, c.Expect("joined")
}

func v2Error(t testing.TB, c *testutil.Client, want string) {
	t.Helper()
	if got := c.Expect("error").Str("message"); got != want {
		t.Fatalf("error %q, want %q", got, want)
	}
}

// TestPartyV2AcrossNodes: a Party-Sockets 2.x room spread over two nodes
// behaves as on one: slot indices and peers cluster-wide, messages both
// ways and to an index on the other node, host-only state not echoed and
// given to later joiners, slot reuse on reconnect through the other node,
// a replacement across nodes, maxClients counting connected slots of every
// node, close_room closing members on both nodes, and the two dialects'
// code spaces kept apart.
func TestPartyV2AcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)

	h := partyV2(t, a)
	h.Send(M{"type": "create", "clientId": "host", "maxClients": 3})
	cr := h.Expect("created")
	code := cr.Str("room")
	if len(code) != 6 || v2Index(cr) != 0 {
		t.Fatalf("created %v", cr)
	}
	g, j := v2Join(t, b, code, "guest")
	if v2Index(j) != 1 || !slices.Equal(v2Peers(j), []int{0}) {
		t.Fatalf("guest joined %v", j)
	}
	if raw := v2Raw(t, h); raw != `{"type":"peer_joined","index":1}` {
		t.Fatalf("host got %s", raw)
	}

	// Messages both ways, exactly as 2.x writes them, and to an index.
	h.Send(M{"type": "send", "data": M{"n": 1}})
	if raw := v2Raw(t, g); raw != `{"type":"message","from":0,"data":{"n":1}}` {
		t.Fatalf("guest got %s", raw)
	}
	g.Send(M{"type": "send", "data": "hi", "to": 0})
	if raw := v2Raw(t, h); raw != `{"type":"message","from":1,"data":"hi"}` {
		t.Fatalf("host got %s", raw)
	}
	g.Send(M{"type": "send", "data": 1, "to": 7})
	v2Error(t, g, "Target peer not found")

	// Host-only state: the guest is refused, the host's is not echoed.
	g.Send(M{"type": "set_state", "data": M{"x": 1}})
	v2Error(t, g, "Only the host can set state")
	h.Send(M{"type": "set_state", "data": M{"round": 2}})
	if raw := v2Raw(t, g); raw != `{"type":"state","data":{"round":2}}` {
		t.Fatalf("guest got %s", raw)
	}
	// A third member on A gets joined then the state; the room is full.
	c, j := v2Join(t, a, code, "carol")
	if v2Index(j) != 2 || !slices.Equal(v2Peers(j), []int{0, 1}) {
		t.Fatalf("carol joined %v", j)
	}
	if raw := v2Raw(t, c); raw != `{"type":"state","data":{"round":2}}` {
		t.Fatalf("carol's state %s", raw)
	}
	h.Expect("peer_joined")
	g.Expect("peer_joined")
	x := partyV2(t, b)
	x.Send(M{"type": "join", "clientId": "dave", "room": code})
	v2Error(t, x, "Room is full")
	// The host's next frame is the guest's: the state was not echoed.
	g.Send(M{"type": "send", "data": "marker"})
	if raw := v2Raw(t, h); raw != `{"type":"message","from":1,"data":"marker"}` {
		t.Fatalf("host got %s", raw)
	}
	c.Expect("message")

	// The guest drops on B: its slot is kept and freed from the cap; it
	// comes back through A with the same index.
	g.Conn.Close()
	for _, m := range []*testutil.Client{h, c} {
		if raw := v2Raw(t, m); raw != `{"type":"peer_left","index":1}` {
			t.Fatalf("peer_left: %s", raw)
		}
	}
	g, j = v2Join(t, a, code, "guest")
	if v2Index(j) != 1 || !slices.Equal(v2Peers(j), []int{0, 2}) {
		t.Fatalf("guest rejoined %v", j)
	}
	if raw := v2Raw(t, g); raw != `{"type":"state","data":{"round":2}}` {
		t.Fatalf("guest's state %s", raw)
	}
	for _, m := range []*testutil.Client{h, c} {
		if raw := v2Raw(t, m); raw != `{"type":"peer_joined","index":1}` {
			t.Fatalf("peer_joined: %s", raw)
		}
	}

	// A replacement through the other node: 4000 to the old socket, no
	// cap check, nobody hears of it.
	g2, j := v2Join(t, b, code, "guest")
	if v2Index(j) != 1 {
		t.Fatalf("replacement joined %v", j)
	}
	g2.Expect("state")
	g.ExpectClose(4000)
	h.Send(M{"type": "send", "data": "after", "to": 1})
	if raw := v2Raw(t, g2); raw != `{"type":"message","from":0,"data":"after"}` {
		t.Fatalf("replacement got %s", raw)
	}
	// Every node still knows whose slot is whose: carol (on A, which heard
	// of the replacement) reaches the host at index 0 and the guest at 1.
	c.Send(M{"type": "send", "data": "to the host", "to": 0})
	if raw := v2Raw(t, h); raw != `{"type":"message","from":2,"data":"to the host"}` {
		t.Fatalf("host got %s", raw)
	}
	c.Send(M{"type": "send", "data": "to the guest", "to": 1})
	if raw := v2Raw(t, g2); raw != `{"type":"message","from":2,"data":"to the guest"}` {
		t.Fatalf("replacement got %s", raw)
	}

	// Party 1.x clients do not see party-v2 codes.
	p := party(t, a)
	p.Send(M{"type": "join", "clientId": "v1", "room": code})
	if m := p.Expect("error"); m.Str("message") != "Room not found" {
		t.Fatalf("1.x join of a 2.x code: %v", m)
	}

	// close_room: only the host; every member on both nodes gets 4001.
	c.Send(M{"type": "close_room"})
	v2Error(t, c, "Only the host can close the room")
	h.Send(M{"type": "close_room"})
	for _, m := range []*testutil.Client{h, c, g2} {
		m.ExpectClose(4001)
	}
	y := partyV2(t, b)
	y.Send(M{"type": "join", "clientId": "late", "room": code})
	v2Error(t, y, "Room not found")
}

// TestPartyV2HostGraceAcrossNodes: the host drops on one node; the guests
// on the other hear peer_left and, when the grace ends, are closed with
// 4001. A host that comes back through the other node in time keeps the
// room past the grace.
func TestPartyV2HostGraceAcrossNodes(t *testing.T) {
	const grace = 1500 * time.Millisecond
	ns := startNATS(t)
	opt := func(c *server.Config) { c.Party.HostGrace = grace }
	a := node(t, ns.url, "a", opt)
	b := node(t, ns.url, "b", opt)
	open := func(t *testing.T) (*testutil.Client, *testutil.Client, string) {
		h := partyV2(t, a)
		h.Send(M{"type": "create", "clientId": "host", "maxClients": 4})
		code := h.Expect("created").Str("room")
		g, _ := v2Join(t, b, code, "guest")
		h.Expect("peer_joined")
		return h, g, code
	}

	t.Run("expires", func(t *testing.T) {
		h, g, _ := open(t)
		t0 := time.Now()
		h.Conn.Close()
		if raw := v2Raw(t, g); raw != `{"type":"peer_left","index":0}` {
			t.Fatalf("guest got %s", raw)
		}
		g.ExpectClose(4001)
		if d := time.Since(t0); d < grace-100*time.Millisecond {
			t.Fatalf("closed after %v, before the grace of %v", d, grace)
		}
	})
	t.Run("host returns", func(t *testing.T) {
		h, g, code := open(t)
		h.Conn.Close()
		g.Expect("peer_left")
		h2, j := v2Join(t, b, code, "host")
		if v2Index(j) != 0 || !slices.Equal(v2Peers(j), []int{1}) {
			t.Fatalf("host rejoined %v", j)
		}
		if m := g.Expect("peer_joined"); v2Index(m) != 0 {
			t.Fatalf("peer_joined %v", m)
		}
		time.Sleep(grace + 300*time.Millisecond) // the old deadline passes: nothing may happen
		h2.Send(M{"type": "send", "data": "still here"})
		if raw := v2Raw(t, g); raw != `{"type":"message","from":0,"data":"still here"}` {
			t.Fatalf("guest got %s", raw)
		}
	})
	t.Run("last member leaves", func(t *testing.T) {
		h, g, code := open(t)
		g.Conn.Close()
		h.Expect("peer_left")
		h.Conn.Close()
		// The record goes once the host's slot is marked off (a worker's
		// registry update after the close): the API's detail turns 404.
		testutil.Eventually(t, func() bool {
			st, _ := getJSON(t, testutil.HTTPURL(b, "/api/rooms/"+code+"?dialect=party-v2"))
			return st == 404
		})
		x := partyV2(t, b)
		x.Send(M{"type": "join", "clientId": "probe", "room": code})
		v2Error(t, x, "Room not found")
	})
}

// TestPartyV2NodeDies: the host's node is killed (SIGKILL); the node that
// reaps it marks the host's slot off (peer_left to the guest on the other
// node) and runs the host's grace: the guest is closed with 4001.
func TestPartyV2NodeDies(t *testing.T) {
	ns := startNATS(t)
	victim, base := startVictim(t, ns.url, runID+"-v2victim")
	var h *testutil.Client
	await(t, 20*time.Second, "victim node accepting", func() bool {
		c, err := testutil.TryDial(t, base+"/party-v2", nil)
		h = c
		return err == nil
	})
	b := node(t, ns.url, "b", func(c *server.Config) { c.Party.HostGrace = time.Second })
	h.Send(M{"type": "create", "clientId": "host", "maxClients": 4})
	code := h.Expect("created").Str("room")
	g, _ := v2Join(t, b, code, "guest")
	h.Expect("peer_joined")
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	m, err := g.TryRead(15 * time.Second)
	if err != nil || m.Str("type") != "peer_left" || v2Index(m) != 0 {
		t.Fatalf("after the kill: %v %v", m, err)
	}
	g.ExpectClose(4001)
}

// TestPartyV2RoomInfoAcrossNodes: GET /room/<code> on a port bound to
// party-v2 answers for a room created on another node, from the registry
// (off the event loop), as Party-Sockets 2.x does on one machine.
func TestPartyV2RoomInfoAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", func(c *server.Config) {
		c.Listeners = append(c.Listeners, server.Listener{Addr: "127.0.0.1:0", Dialect: "party-v2"})
		c.Party.InstanceID = "node-b"
	})
	base := "http://" + b.Addrs()[len(b.Addrs())-1].String()
	get := func(path string) (int, string, http.Header) {
		t.Helper()
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), resp.Header
	}
	h := partyV2(t, a)
	h.Send(M{"type": "create", "clientId": "host", "maxClients": 2.5, "url": "https://ctl.example/{room}"})
	code := h.Expect("created").Str("room")
	want := `{"clients":1,"maxClients":2.5,"origin":"unknown","url":"https://ctl.example/` + code + `"}`
	if st, body, hdr := get("/room/" + code); st != 200 || body != want || hdr.Get("Access-Control-Allow-Origin") != "*" || hdr.Get("X-Instance-Id") != "node-b" {
		t.Fatalf("GET /room: %d %s %v", st, body, hdr)
	}
	v2Join(t, b, code, "guest")
	if _, body, _ := get("/room/" + code); !strings.HasPrefix(body, `{"clients":2,`) {
		t.Fatalf("after a join on b: %s", body)
	}
	if st, body, _ := get("/room/ZZZZZZ"); st != 404 || body != `{"error":"Room not found"}` {
		t.Fatalf("unknown room: %d %s", st, body)
	}
	h.Send(M{"type": "close_room"})
	h.ExpectClose(4001)
	testutil.Eventually(t, func() bool { st, _, _ := get("/room/" + code); return st == 404 })
}
