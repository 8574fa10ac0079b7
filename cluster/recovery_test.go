package cluster_test

import (
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"partyline/internal/testutil"
	"partyline/server"
)

// Recovery across nodes (docs/cluster.md, "Party recovery across nodes"):
// a room's frames are sequenced by its JetStream log, so a member may come
// back through any node, with since, and get exactly what it missed.

func graceNode(t testing.TB, url, name string, grace time.Duration) *server.Server {
	return node(t, url, name, func(c *server.Config) { c.Dialects.Party.SeatGrace = grace })
}

// offset is what a client last processed: the room's epoch and a seq.
type offset struct {
	epoch string
	seq   int64
}

func (o offset) since() M { return M{"epoch": o.epoch, "seq": o.seq} }

func seqOf(t testing.TB, m testutil.Msg) int64 {
	t.Helper()
	v, ok := m["seq"].(float64)
	if !ok {
		t.Fatalf("no seq in %v", m)
	}
	return int64(v)
}

// drain reads and discards a client's traffic until the test ends, so a
// busy sender is never judged a slow consumer.
func drain(c *testutil.Client) {
	go func() {
		for {
			if _, err := c.TryRead(time.Minute); err != nil {
				return
			}
		}
	}()
}

// A member away (seat grace) comes back through the other node: the rest
// see peer_away and peer_back, never peer_left, and it recovers every
// frame addressed to it (broadcasts and a targeted send, and a state), in
// order, each with seq, then live traffic.
func TestPartyRecoverAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := graceNode(t, ns.url, "a", 10*time.Second)
	b := graceNode(t, ns.url, "b", 10*time.Second)

	ca := party(t, a)
	ca.Send(M{"type": "create", "clientId": "alice"})
	created := ca.Expect("created")
	code, epoch := created.Str("room"), created.Str("epoch")
	if epoch == "" {
		t.Fatalf("created without epoch: %v", created)
	}
	cb := party(t, b)
	j := joinRoom(t, cb, "bob", code)
	if j.Str("epoch") != epoch {
		t.Fatalf("joined epoch %q, created %q", j.Str("epoch"), epoch)
	}
	ca.Expect("peer_joined")
	at := offset{epoch, seqOf(t, j)}

	ca.Send(M{"type": "send", "data": 1})
	m := cb.Expect("message")
	if seqOf(t, m) <= at.seq {
		t.Fatalf("message seq %v not after joined's %d", m["seq"], at.seq)
	}
	at.seq = seqOf(t, m)
	token := j.Str("token")

	cb.Conn.Close() // a flap: no leave
	if m := ca.Expect("peer_away"); m.Str("clientId") != "bob" {
		t.Fatalf("alice got %v", m)
	}
	ca.Send(M{"type": "send", "data": 2})
	ca.Send(M{"type": "send", "data": 3, "to": "bob"}) // an away member is a valid target
	ca.Send(M{"type": "set_state", "state": M{"round": 2}})
	ca.Send(M{"type": "send", "data": 4})
	ca.Expect("state") // alice's own state comes back to her: the log has it

	cb2 := party(t, a) // back through the other node
	cb2.Send(M{"type": "join", "clientId": "bob", "room": code, "token": token, "since": at.since()})
	j2 := cb2.Expect("joined")
	if j2["recovered"] != true {
		t.Fatalf("not recovered: %v", j2)
	}
	last := at.seq
	for _, want := range []string{"2", "3", "state", "4"} {
		m := cb2.Read()
		got := fmt.Sprint(m["data"])
		if m.Str("type") == "state" {
			got = "state"
		}
		if got != want || seqOf(t, m) <= last {
			t.Fatalf("replayed %v, want %s after seq %d", m, want, last)
		}
		last = seqOf(t, m)
	}
	if m := ca.Expect("peer_back"); m.Str("clientId") != "bob" {
		t.Fatalf("alice got %v", m)
	}
	ca.Send(M{"type": "send", "data": 5})
	if m := cb2.Expect("message"); m["data"] != 5.0 || seqOf(t, m) <= last {
		t.Fatalf("live after recovery: %v", m)
	}
	ca.ExpectSilence(200 * time.Millisecond) // no peer_left, ever
}

// Seat grace across nodes: an away seat counts toward maxClients, and its
// deadline ends it with peer_left on every node; a wrong epoch is not
// recovered.
func TestPartySeatGraceAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := graceNode(t, ns.url, "a", 500*time.Millisecond)
	b := graceNode(t, ns.url, "b", 500*time.Millisecond)
	ca := party(t, a)
	code, _ := createRoom(t, ca, "alice", 2)
	cb := party(t, b)
	joinRoom(t, cb, "bob", code)
	ca.Expect("peer_joined")
	cb.Conn.Close()
	ca.Expect("peer_away")
	cc := party(t, b)
	cc.Send(M{"type": "join", "clientId": "carol", "room": code})
	if m := cc.Expect("error"); m.Str("message") == "" {
		t.Fatalf("carol: %v", m)
	}
	if m := ca.Expect("peer_left"); m.Str("clientId") != "bob" {
		t.Fatalf("alice got %v", m)
	}
	j := joinRoom(t, cc, "carol", code)
	ca.Expect("peer_joined")
	if len(clients(j)) != 2 {
		t.Fatalf("joined %v", j)
	}
	cd := party(t, a)
	cc.Send(M{"type": "leave"})
	ca.Expect("peer_left")
	cd.Send(M{"type": "join", "clientId": "dave", "room": code, "since": M{"epoch": "not-this-room", "seq": 1}})
	if m := cd.Expect("joined"); m["recovered"] != false {
		t.Fatalf("wrong epoch: %v", m)
	}
	cd.ExpectSilence(100 * time.Millisecond)
}

// Flap exactness across nodes: three senders on both nodes send 1,000
// messages while a fourth member drops and re-joins with since 20 times,
// alternately through each node: it receives every message exactly once,
// in order, with strictly increasing seq.
func TestPartyFlapExactAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	// History large enough for the whole run: the flapper reads far
	// behind the senders (what overflow does is TestPartySeatGraceAcrossNodes's
	// and the single-node tests' business).
	big := func(c *server.Config) {
		c.Dialects.Party.HistorySize, c.Dialects.Party.HistoryBytes = 2000, 8<<20
		c.NodeLease = 10 * time.Second // no node is taken for dead on a loaded machine
	}
	nodes := []*server.Server{node(t, ns.url, "a", big), node(t, ns.url, "b", big)}
	const senders, each, flaps = 3, 334, 20

	c0 := party(t, nodes[0])
	code, _ := createRoom(t, c0, "s0", 0)
	ss := []*testutil.Client{c0}
	for i := 1; i < senders; i++ {
		c := party(t, nodes[i%2])
		joinRoom(t, c, fmt.Sprintf("s%d", i), code)
		ss = append(ss, c)
	}
	f := party(t, nodes[1])
	j := joinRoom(t, f, "flapper", code)
	at := offset{j.Str("epoch"), seqOf(t, j)}
	for _, c := range ss {
		drain(c)
	}

	var wg sync.WaitGroup
	var sent atomic.Int64
	for i, c := range ss {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				b := fmt.Appendf(nil, `{"type":"send","data":{"s":%d,"n":%d}}`, i, n)
				if err := c.Conn.WriteMessage(1, b); err != nil {
					return
				}
				sent.Add(1)
				if n%50 == 0 {
					time.Sleep(2 * time.Millisecond) // spread the flaps across the run
				}
			}
		}()
	}

	next := make([]int, senders) // the n expected next from each sender
	got, flapped := 0, 0
	for got < senders*each {
		if flapped < flaps && got >= (flapped+1)*senders*each/(flaps+2) {
			f.Conn.Close()
			flapped++
			f = party(t, nodes[flapped%2])
			f.Send(M{"type": "join", "clientId": "flapper", "room": code, "since": at.since()})
			for {
				m, err := f.TryRead(10 * time.Second)
				if err != nil {
					t.Fatalf("flap %d: %v", flapped, err)
				}
				if m.Str("type") != "joined" {
					continue // peer_* the join raced with
				}
				if m["recovered"] != true {
					t.Fatalf("flap %d through node %d not recovered: %v (since %v)", flapped, flapped%2, m, at)
				}
				break
			}
		}
		m, err := f.TryRead(10 * time.Second)
		if err != nil {
			t.Fatalf("after %d of %d messages (%d sent): %v", got, senders*each, sent.Load(), err)
		}
		if m.Str("type") != "message" {
			continue
		}
		s := seqOf(t, m)
		if s <= at.seq {
			t.Fatalf("seq %d after %d: %v", s, at.seq, m)
		}
		at.seq = s
		d := m["data"].(map[string]any)
		i, n := int(d["s"].(float64)), int(d["n"].(float64))
		if n != next[i] {
			t.Fatalf("from s%d got n=%d, want %d (a gap or a duplicate) after %d flaps", i, n, next[i], flapped)
		}
		next[i]++
		got++
	}
	wg.Wait()
	if flapped != flaps {
		t.Fatalf("flapped %d times, want %d", flapped, flaps)
	}
}

// A node drains (SIGTERM's path) while its members re-join through the
// other node with token and since: nothing is lost, nobody hears
// peer_left.
func TestPartyDrainMovesMembers(t *testing.T) {
	ns := startNATS(t)
	a, stopA := testutil.StartStoppable(t, func(c *server.Config) {
		c.NATSURL, c.NodeID, c.NodeLease = ns.url, runID+"-"+t.Name()+"-a", 2*time.Second
		c.Dialects.Party.SeatGrace = 10 * time.Second
	})
	b := graceNode(t, ns.url, "b", 10*time.Second)

	host := party(t, b)
	code, _ := createRoom(t, host, "host", 0)
	type member struct {
		id  string
		c   *testutil.Client
		tok string
		at  offset
	}
	var ms []*member
	for _, id := range []string{"m1", "m2"} {
		c := party(t, a)
		j := joinRoom(t, c, id, code)
		ms = append(ms, &member{id, c, j.Str("token"), offset{j.Str("epoch"), seqOf(t, j)}})
	}
	hostSeen := make(chan testutil.Msg, 4096)
	go func() {
		for {
			m, err := host.TryRead(time.Minute)
			if err != nil {
				close(hostSeen)
				return
			}
			hostSeen <- m
		}
	}()
	const total = 200
	done := make(chan struct{})
	go func() { // the host plays on while A drains
		defer close(done)
		for n := range total {
			if err := host.Conn.WriteMessage(1, fmt.Appendf(nil, `{"type":"send","data":%d}`, n)); err != nil {
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()

	next := map[string]int{}
	read := func(m *member, until int) {
		t.Helper()
		for next[m.id] < until {
			x, err := m.c.TryRead(10 * time.Second)
			if err != nil {
				t.Fatalf("%s after %d: %v", m.id, next[m.id], err)
			}
			if x.Str("type") != "message" {
				continue
			}
			if n := int(x["data"].(float64)); n != next[m.id] {
				t.Fatalf("%s got %d, want %d", m.id, n, next[m.id])
			}
			m.at.seq = seqOf(t, x)
			next[m.id]++
		}
	}
	for _, m := range ms {
		read(m, 20)
	}
	go stopA()
	for _, m := range ms {
		// Read on until A closes the connection (1001), then move.
		for {
			x, err := m.c.TryRead(10 * time.Second)
			if err != nil {
				break
			}
			if x.Str("type") == "message" {
				if n := int(x["data"].(float64)); n != next[m.id] {
					t.Fatalf("%s got %d, want %d", m.id, n, next[m.id])
				}
				m.at.seq = seqOf(t, x)
				next[m.id]++
			}
		}
		m.c = party(t, b)
		m.c.Send(M{"type": "join", "clientId": m.id, "room": code, "token": m.tok, "since": m.at.since()})
		for {
			x := m.c.Read()
			if x.Str("type") == "joined" {
				if x["recovered"] != true {
					t.Fatalf("%s moved without recovery: %v", m.id, x)
				}
				break
			}
		}
	}
	for _, m := range ms {
		read(m, total)
	}
	<-done
	host.Send(M{"type": "send", "data": "end"})
	for _, m := range ms {
		for x := m.c.Read(); x["data"] != "end"; x = m.c.Read() {
		}
	}
	host.Conn.Close()
	for x := range hostSeen {
		if x.Str("type") == "peer_left" || x.Str("type") == "error" {
			t.Fatalf("host heard %v during the drain", x)
		}
	}
}

// A node killed with SIGKILL: its member reconnects through the other
// node with since and recovers what was sent before and after the kill.
func TestPartyRecoverAfterNodeKilled(t *testing.T) {
	ns := startNATS(t)
	victim, base := startVictim(t, ns.url, runID+"-victim-rec", "--party-seat-grace", "10s")
	var vc *testutil.Client
	await(t, 20*time.Second, "victim node accepting", func() bool {
		c, err := testutil.TryDial(t, base+"/party", nil)
		vc = c
		return err == nil
	})
	a := graceNode(t, ns.url, "a", 10*time.Second)
	ca := party(t, a)
	code, _ := createRoom(t, ca, "alice", 0)
	j := joinRoom(t, vc, "bob", code)
	ca.Expect("peer_joined")
	at := offset{j.Str("epoch"), seqOf(t, j)}
	for n := range 5 {
		ca.Send(M{"type": "send", "data": n})
		at.seq = seqOf(t, vc.Expect("message"))
	}
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for n := 5; n < 10; n++ {
		ca.Send(M{"type": "send", "data": n})
	}
	cb := party(t, a)
	cb.Send(M{"type": "join", "clientId": "bob", "room": code, "token": j.Str("token"), "since": at.since()})
	if m := cb.Expect("joined"); m["recovered"] != true {
		t.Fatalf("not recovered: %v", m)
	}
	for n := 5; n < 10; n++ {
		if m := cb.Expect("message"); m["data"] != float64(n) {
			t.Fatalf("got %v, want %d", m, n)
		}
	}
	// The reaper later finds bob's entry already taken over: no peer_left.
	for {
		m, err := ca.TryRead(4 * time.Second) // lease 2 s
		if err != nil {
			break
		}
		if m.Str("type") == "peer_left" {
			t.Fatalf("alice got %v", m)
		}
	}
}
