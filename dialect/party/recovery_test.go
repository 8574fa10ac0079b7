package party_test

import (
	"context"
	"fmt"
	"partyline/assemble"

	"net/http"
	"sync"
	"testing"
	"time"

	"partyline/internal/security"
	"partyline/internal/testutil"
	"partyline/server"
)

// seq returns a frame's seq (-1 if absent).
func seqOf(m testutil.Msg) int64 {
	f, ok := m["seq"].(float64)
	if !ok {
		return -1
	}
	return int64(f)
}

// rejoin dials a new client that joins code as id with token and since.
func (e *env) rejoin(code, id, token, epoch string, since int64) (*testutil.Client, testutil.Msg) {
	e.t.Helper()
	c := e.dial()
	req := map[string]any{"type": "join", "clientId": id, "room": code, "token": token}
	if epoch != "" {
		req["since"] = map[string]any{"epoch": epoch, "seq": since}
	}
	c.Send(req)
	return c, c.Expect("joined")
}

func TestOffsetsOnTheWire(t *testing.T) {
	e := start(t, nil)
	a, code, _ := e.create("a", nil)
	b, j := e.join(code, "b", a)
	epoch := j.Str("epoch")
	if epoch == "" || seqOf(j) != 0 {
		t.Fatalf("joined without epoch/seq: %v", j)
	}
	a.Send(map[string]any{"type": "send", "data": 1})
	if m := b.Expect("message"); seqOf(m) != 1 {
		t.Fatalf("first message %v, want seq 1", m)
	}
	b.Send(map[string]any{"type": "set_state", "state": map[string]any{"x": 1}})
	for _, c := range []*testutil.Client{a, b} {
		if m := c.Expect("state"); seqOf(m) != 2 {
			t.Fatalf("state %v, want seq 2", m)
		}
	}
	a.Send(map[string]any{"type": "send", "data": 2, "to": "a"}) // to itself: not b's
	a.Expect("message")
	a.Send(map[string]any{"type": "send", "data": 3})
	if m := b.Expect("message"); seqOf(m) != 4 {
		t.Fatalf("message %v, want seq 4 (3 went to a only)", m)
	}
	_, j2 := e.join(code, "c", a, b)
	if j2.Str("epoch") != epoch || seqOf(j2) != 4 {
		t.Fatalf("second joined %v, want epoch %s seq 4", j2, epoch)
	}
	if _, ok := j2["recovered"]; ok {
		t.Fatalf("recovered without since: %v", j2)
	}
}

// A member that drops and re-joins with since 20 times while three others
// send 1,000 messages (some to it, some to others) receives every frame
// addressed to it exactly once, in order.
func TestRecoveryFlapExactness(t *testing.T) {
	e := start(t, func(c *server.Config) {
		c.Party.SeatGrace = 10 * time.Second
		c.Party.HistorySize = 100000
		c.Party.HistoryBytes = 64 << 20
	})
	host, code, _ := e.create("s0", nil)
	s1, _ := e.join(code, "s1", host)
	s2, _ := e.join(code, "s2", host, s1)
	m, j := e.join(code, "m", host, s1, s2)
	token, epoch := j.Str("token"), j.Str("epoch")
	senders := []*testutil.Client{host, s1, s2}
	const total, flaps = 1000, 20

	var wg sync.WaitGroup
	var mu sync.Mutex
	want := map[string]bool{} // "sender/n" addressed to m
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := i; n < total; n += len(senders) {
				req := map[string]any{"type": "send", "data": map[string]any{"s": i, "n": n}}
				switch n % 7 {
				case 3:
					req["to"] = "m"
				case 5:
					req["to"] = fmt.Sprintf("s%d", (i+1)%len(senders)) // not m's
				}
				if _, to := req["to"]; !to || req["to"] == "m" {
					mu.Lock()
					want[fmt.Sprintf("%d/%d", i, n)] = true
					mu.Unlock()
				}
				s.Send(req)
				if n%10 == 0 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
		// Drain what the senders receive so their queues stay small.
		go func() {
			for {
				if _, err := s.TryRead(20 * time.Second); err != nil {
					return
				}
			}
		}()
	}

	// m's frames arrive on a channel (a gorilla read timeout breaks the
	// connection for good, so reads block in a goroutine per connection).
	pump := func(c *testutil.Client) <-chan testutil.Msg {
		ch := make(chan testutil.Msg, 1024)
		go func() {
			defer close(ch)
			for {
				msg, err := c.TryRead(time.Minute)
				if err != nil {
					return
				}
				ch <- msg
			}
		}()
		return ch
	}
	in := pump(m)
	got := map[string]int{}
	last := seqOf(j)
	var order []string
	recovered := 0
	deadline := time.Now().Add(30 * time.Second)
	sendersDone := make(chan struct{})
	go func() { wg.Wait(); close(sendersDone) }()
	for {
		if recovered < flaps && len(order) >= (recovered+1)*(total*3/4)/(flaps+1) {
			m.Conn.Close() // the network drops: no close frame, no leave
			var rj testutil.Msg
			for range in { // what was already in flight on the old connection is lost with it
			}
			m, rj = e.rejoin(code, "m", token, epoch, last)
			if rj["recovered"] != true {
				t.Fatalf("flap %d: joined %v, want recovered", recovered+1, rj)
			}
			in = pump(m)
			recovered++
		}
		select {
		case <-sendersDone:
			mu.Lock()
			done := len(order) >= len(want) && recovered == flaps
			mu.Unlock()
			if done {
				goto check
			}
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %d of %d messages, %d flaps", len(order), len(want), recovered)
		}
		var msg testutil.Msg
		select {
		case msg = <-in:
		case <-time.After(200 * time.Millisecond):
			continue
		}
		if msg.Str("type") != "message" {
			continue
		}
		s := seqOf(msg)
		if s <= last {
			t.Fatalf("seq %d after %d: not strictly increasing (%v)", s, last, msg)
		}
		last = s
		d := msg["data"].(map[string]any)
		k := fmt.Sprintf("%d/%d", int(d["s"].(float64)), int(d["n"].(float64)))
		got[k]++
		order = append(order, k)
	}
check:
	mu.Lock()
	defer mu.Unlock()
	for k := range want {
		if got[k] != 1 {
			t.Errorf("message %s received %d times, want once", k, got[k])
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("message %s was not addressed to m but arrived", k)
		}
	}
	t.Logf("%d messages addressed to m, %d received, %d recoveries", len(want), len(order), recovered)
}

func TestRecoveryRefused(t *testing.T) {
	e := start(t, func(c *server.Config) {
		c.Party.SeatGrace = 10 * time.Second
		c.Party.HistorySize = 4
	})
	a, code, _ := e.create("a", nil)
	b, j := e.join(code, "b", a)
	token, epoch := j.Str("token"), j.Str("epoch")
	a.Send(map[string]any{"type": "set_state", "state": "s1"})
	b.Expect("state")
	a.Expect("state")
	since := int64(1)
	b.Conn.Close()
	a.Expect("peer_away")

	cases := []struct {
		name  string
		epoch string
		since int64
		sends int // messages sent while b is away
	}{
		{"history overflowed", epoch, since, 10},
		{"wrong epoch", "not-" + epoch, since, 0},
		{"offset from the future", epoch, 1 << 40, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			for i := range tc.sends {
				a.Send(map[string]any{"type": "send", "data": i})
			}
			if tc.sends > 0 { // the sends are sequenced before the re-join
				a.Send(map[string]any{"type": "send", "data": "x", "to": "a"})
				a.Expect("message")
			}
			c, rj := e.rejoin(code, "b", token, tc.epoch, tc.since)
			if rj["recovered"] != false {
				t.Fatalf("joined %v, want recovered false", rj)
			}
			a.Expect("peer_back")
			// Not recovered: the retained state to resync from, then live only.
			if st := c.Expect("state"); st["state"] != "s1" {
				t.Fatalf("state %v", st)
			}
			a.Send(map[string]any{"type": "send", "data": "live"})
			if m := c.Expect("message"); m["data"] != "live" {
				t.Fatalf("after recovered=false got %v, want the live message (no replay)", m)
			}
			c.Conn.Close()
			a.Expect("peer_away")
		})
	}
	t.Run("invalid since", func(t *testing.T) {
		c := e.with(t).dial()
		c.Send(map[string]any{"type": "join", "clientId": "z", "room": code, "since": map[string]any{"seq": "x"}})
		expectError(t, c, "since")
	})
}

func TestSeatGrace(t *testing.T) {
	const grace = 400 * time.Millisecond
	e := start(t, func(c *server.Config) { c.Party.SeatGrace = grace })
	a, code, _ := e.create("a", map[string]any{"maxClients": 2})
	b, j := e.join(code, "b", a)
	token := j.Str("token")

	b.Conn.Close()
	if m := a.Expect("peer_away"); m.Str("clientId") != "b" {
		t.Fatalf("got %v", m)
	}
	c := e.dial()
	c.Send(map[string]any{"type": "join", "clientId": "c", "room": code})
	expectExact(t, c, "Room is full") // the away seat counts toward maxClients

	b, j = e.rejoin(code, "b", token, "", 0)
	if m := a.Expect("peer_back"); m.Str("clientId") != "b" {
		t.Fatalf("got %v", m)
	}
	if got := clients(t, j); len(got) != 2 || got[1] != "b" {
		t.Fatalf("clients %v", got)
	}
	b.Conn.Close()
	a.Expect("peer_away")
	t0 := time.Now()
	if m := a.Expect("peer_left"); m.Str("clientId") != "b" {
		t.Fatalf("got %v", m)
	}
	if d := time.Since(t0); d < grace/2 {
		t.Fatalf("peer_left after %v, grace %v", d, grace)
	}
	c.Send(map[string]any{"type": "join", "clientId": "c", "room": code})
	c.Expect("joined")
	a.Expect("peer_joined")

	// A room whose members are all away lives until the last grace ends.
	a.Conn.Close()
	c.Conn.Close()
	if st, _ := e.getRoom(code); st != http.StatusOK {
		t.Fatalf("room with every seat away: GET %d, want 200", st)
	}
	eventually(t, "the room to go after the grace", func() bool {
		st, _ := e.getRoom(code)
		return st == http.StatusNotFound
	})
}

// Failed joins are throttled per connection and per address.
func TestJoinFailuresThrottled(t *testing.T) {
	e := start(t, func(c *server.Config) {
		c.Party.JoinFailuresPerMinute = 5
		c.Party.JoinFailuresPerMinutePerIP = 8
	})
	before := security.Count("party_join_throttled")
	c := e.dial()
	for i := range 5 {
		c.Send(map[string]any{"type": "join", "clientId": "x", "room": fmt.Sprintf("ZZZ%d", i)})
		expectExact(t, c, "Room not found")
	}
	c.Send(map[string]any{"type": "join", "clientId": "x", "room": "ZZZZ"})
	expectError(t, c, "too many failed joins")
	c.ExpectClose(1008)

	// Same address, a fresh connection: 3 more failures fit the address's 8.
	d := e.dial()
	for i := range 3 {
		d.Send(map[string]any{"type": "join", "clientId": "x", "room": fmt.Sprintf("YYY%d", i)})
		expectExact(t, d, "Room not found")
	}
	d.Send(map[string]any{"type": "join", "clientId": "x", "room": "YYYY"})
	expectError(t, d, "too many failed joins")
	d.ExpectClose(1008)
	if got := security.Count("party_join_throttled") - before; got != 2 {
		t.Fatalf("party_join_throttled grew by %d, want 2", got)
	}
}

// restartable is a server with a fixed data directory that a test stops
// (as SIGTERM does) and starts again.
type restartable struct {
	t      *testing.T
	dir    string
	mutate func(*server.Config)
	srv    *server.Server
	cancel context.CancelFunc
	done   chan error
}

func (r *restartable) start() *env {
	r.t.Helper()
	cfg := testutil.Config(r.t)
	cfg.DataDir = r.dir
	if r.mutate != nil {
		r.mutate(&cfg)
	}
	s, err := assemble.New(cfg)
	if err != nil {
		r.t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.srv, r.cancel, r.done = s, cancel, make(chan error, 1)
	go func() { r.done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-r.done:
		r.t.Fatalf("server.Run: %v", err)
	}
	r.t.Cleanup(r.stop)
	return &env{t: r.t, srv: s, url: testutil.URL(s, 0, "/party")}
}

func (r *restartable) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("server.Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		r.t.Fatal("server did not stop")
	}
}

// 50 rooms mid-game survive a graceful restart: rooms, state and history
// come back, members reclaim their seats with their tokens and recover
// what they had not processed; a wrong token is refused.
func TestRestartKeepsRooms(t *testing.T) {
	rs := &restartable{t: t, dir: t.TempDir(), mutate: func(c *server.Config) { c.Party.RestoreGrace = 30 * time.Second }}
	e := rs.start()
	type room struct {
		code, epoch       string
		hostTok, guestTok string
		guestSeen         int64 // the guest's offset: it processed up to here
		missed            []any // what the host sent after it
		state             any
	}
	rooms := make([]*room, 50)
	for i := range rooms {
		host, code, hostTok := e.create("host", nil)
		guest, j := e.join(code, "guest", host)
		rm := &room{code: code, epoch: j.Str("epoch"), hostTok: hostTok, guestTok: j.Str("token"), state: map[string]any{"round": float64(i)}}
		host.Send(map[string]any{"type": "set_state", "state": rm.state})
		guest.Expect("state")
		for n := range 5 {
			host.Send(map[string]any{"type": "send", "data": float64(i*10 + n)})
		}
		for n := range 5 {
			m := guest.Expect("message")
			if n < 2 { // the guest processed two; three were still in flight for it
				rm.guestSeen = seqOf(m)
			} else {
				rm.missed = append(rm.missed, m["data"])
			}
		}
		rooms[i] = rm
	}
	rs.stop()

	e = rs.start()
	for i, rm := range rooms {
		st, info := e.getRoom(rm.code)
		if st != http.StatusOK || info.Members != 2 {
			t.Fatalf("room %d (%s) after restart: %d %+v", i, rm.code, st, info)
		}
		bad := e.dial()
		bad.Send(map[string]any{"type": "join", "clientId": "guest", "room": rm.code, "token": "wrong"})
		expectError(t, bad, "token")
		bad.Send(map[string]any{"type": "join", "clientId": "guest", "room": rm.code})
		expectError(t, bad, "token required")

		guest, j := e.rejoin(rm.code, "guest", rm.guestTok, rm.epoch, rm.guestSeen)
		if j["recovered"] != true || j.Str("epoch") != rm.epoch {
			t.Fatalf("room %d: guest re-joined %v, want recovered in epoch %s", i, j, rm.epoch)
		}
		for _, want := range rm.missed {
			if m := guest.Expect("message"); m["data"] != want {
				t.Fatalf("room %d: replayed %v, want data %v", i, m, want)
			}
		}
		host, hj := e.rejoin(rm.code, "host", rm.hostTok, "", 0)
		if st := host.Expect("state"); fmt.Sprint(st["state"]) != fmt.Sprint(rm.state) {
			t.Fatalf("room %d: state %v, want %v", i, st, rm.state)
		}
		if c := clients(t, hj); len(c) != 2 {
			t.Fatalf("room %d: clients %v", i, c)
		}
		if m := guest.Expect("peer_back"); m.Str("clientId") != "host" {
			t.Fatalf("room %d: guest got %v", i, m)
		}
		// The game carries on with the same epoch and increasing seqs.
		host.Send(map[string]any{"type": "send", "data": "after"})
		if m := guest.Expect("message"); m["data"] != "after" || seqOf(m) <= rm.guestSeen+3 {
			t.Fatalf("room %d: after restart got %v", i, m)
		}
	}
}

// A room nobody comes back to after a restart is gone after the restore
// grace, from memory and from the store.
func TestRestoredSeatsExpire(t *testing.T) {
	rs := &restartable{t: t, dir: t.TempDir(), mutate: func(c *server.Config) { c.Party.RestoreGrace = 300 * time.Millisecond }}
	e := rs.start()
	_, code, _ := e.create("a", nil)
	rs.stop()
	e = rs.start()
	if st, _ := e.getRoom(code); st != http.StatusOK {
		t.Fatalf("restored room: %d", st)
	}
	eventually(t, "the restored room to expire", func() bool {
		st, _ := e.getRoom(code)
		return st == http.StatusNotFound
	})
	rs.stop()
	e = rs.start()
	if st, _ := e.getRoom(code); st != http.StatusNotFound {
		t.Fatalf("an expired room came back after a second restart: %d", st)
	}
}
