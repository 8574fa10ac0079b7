package server

import (
	"strconv"
	"testing"

	"partyline/routing"
)

// A flush pass takes Fanouts until fanBudget deliveries and leaves the
// rest, in order and ahead of later ones, for the next pass; each
// connection gets every frame once, in the order of the broadcasts.
func TestRunFansCrossesBudget(t *testing.T) {
	s := &Server{cfg: Defaults(), metrics: newMetrics("t", nil)}
	l := &loop{srv: s}
	l.scheduled.Store(true) // no engine: wake must not queue a task
	h := routing.NewHub()
	h.SetFanoutMin(1)
	r := h.Create("R", 0)
	members := fanBudget/4 + 1 // four broadcasts cross the budget
	conns := make([]*conn, members)
	for i := range conns {
		conns[i] = &conn{loop: l, srv: s, state: stateOpen}
		if _, err := r.Join(&routing.Member{ID: strconv.Itoa(i), Conn: conns[i]}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	frames := make([]*routing.Frame, 6)
	for i := range frames {
		frames[i] = routing.NewTextFrom([]byte(strconv.Itoa(i)))
		if i < 5 {
			r.Broadcast(frames[i], nil, false)
		}
	}
	dirty := l.runFans(nil)
	if len(dirty) != members {
		t.Fatalf("%d connections made dirty, want %d", len(dirty), members)
	}
	if len(l.fans) != 1 || len(conns[0].q) != 4 {
		t.Fatalf("first pass: %d fanouts left, %d frames queued; want 1 and 4", len(l.fans), len(conns[0].q))
	}
	r.Broadcast(frames[5], nil, false) // queued behind the leftover
	if dirty := l.runFans(nil); len(dirty) != 0 {
		t.Fatalf("second pass filed %d connections already dirty", len(dirty))
	}
	for i, c := range conns {
		if len(c.q) != 6 {
			t.Fatalf("conn %d: %d frames, want 6", i, len(c.q))
		}
		for k, f := range c.q {
			if f != frames[k] {
				t.Fatalf("conn %d: frame %d is %q", i, k, f.Payload())
			}
		}
		releaseAll(c.q)
	}
	if len(l.fans) != 0 || l.fansOut != 6*members {
		t.Fatalf("%d fanouts left, %d deliveries counted", len(l.fans), l.fansOut)
	}
	for _, f := range frames {
		f.Release() // panics if a Fanout released it too often
	}
}
