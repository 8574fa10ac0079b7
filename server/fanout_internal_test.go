package server

import (
	"strconv"
	"testing"

	"partyline/routing"
)

// fanLoop returns a server, a loop without an engine (wake queues no
// task) and a room that fans out from one member.
func fanLoop() (*Server, *loop, *routing.Room) {
	s := &Server{cfg: Defaults(), metrics: newMetrics("t", nil)}
	l := &loop{srv: s, conns: map[*conn]struct{}{}}
	l.scheduled.Store(true)
	h := routing.NewHub()
	h.SetFanoutMin(1)
	return s, l, h.Create("R", 0)
}

// A flush pass takes Fanouts until its budget of deliveries and leaves the
// rest, in order and ahead of later ones, for the next pass; each
// connection gets every frame once, in the order of the broadcasts.
func TestRunFansCrossesBudget(t *testing.T) {
	s, l, r := fanLoop()
	const members = 1000
	first := (l.fanBudget() + members - 1) / members // the Fanouts the first pass takes
	conns := make([]*conn, members)
	for i := range conns {
		conns[i] = &conn{loop: l, srv: s, state: stateOpen}
		if _, err := r.Join(&routing.Member{ID: strconv.Itoa(i), Conn: conns[i]}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	frames := make([]*routing.Frame, first+2)
	for i := range frames {
		frames[i] = routing.NewTextFrom([]byte(strconv.Itoa(i)))
		if i <= first {
			r.Broadcast(frames[i], nil, false)
		}
	}
	dirty := l.runFans(nil)
	if len(dirty) != members {
		t.Fatalf("%d connections made dirty, want %d", len(dirty), members)
	}
	if len(l.fans) != 1 || len(conns[0].q) != first {
		t.Fatalf("first pass: %d fanouts left, %d frames queued; want 1 and %d", len(l.fans), len(conns[0].q), first)
	}
	r.Broadcast(frames[first+1], nil, false) // queued behind the leftover
	if dirty := l.runFans(nil); len(dirty) != 0 {
		t.Fatalf("second pass filed %d connections already dirty", len(dirty))
	}
	for i, c := range conns {
		if len(c.q) != len(frames) {
			t.Fatalf("conn %d: %d frames, want %d", i, len(c.q), len(frames))
		}
		for k, f := range c.q {
			if f != frames[k] {
				t.Fatalf("conn %d: frame %d is %q", i, k, f.Payload())
			}
		}
		releaseAll(c.q)
	}
	if len(l.fans) != 0 || l.fansOut != len(frames)*members {
		t.Fatalf("%d fanouts left, %d deliveries counted", len(l.fans), l.fansOut)
	}
	for _, f := range frames {
		f.Release() // panics if a Fanout released it too often
	}
}

// Before reading input a loop queues the Fanouts handed to it and files
// the connections they reached for its next flush pass.
func TestDrainFansFilesConns(t *testing.T) {
	s, l, r := fanLoop()
	conns := []*conn{{loop: l, srv: s, state: stateOpen}, {loop: l, srv: s, state: stateOpen}}
	for i, c := range conns {
		if _, err := r.Join(&routing.Member{ID: strconv.Itoa(i), Conn: c}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	f := routing.NewTextFrom([]byte(`"x"`))
	defer f.Release()
	l.drainFans() // nothing queued: nothing filed
	if len(l.dirty) != 0 {
		t.Fatal("filed connections with no Fanout queued")
	}
	r.Broadcast(f, conns[0], false)
	if !l.fanQueued.Load() {
		t.Fatal("Fanout not marked queued")
	}
	l.drainFans()
	if l.fanQueued.Load() || len(l.dirty) != 1 || l.dirty[0] != conns[1] || len(conns[1].q) != 1 || len(conns[0].q) != 0 {
		t.Fatalf("after drain: queued %v, dirty %d, queues %d/%d", l.fanQueued.Load(), len(l.dirty), len(conns[0].q), len(conns[1].q))
	}
	releaseAll(conns[1].q)
}
