package routing

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// testLoop is a Group that queues Fanouts and delivers them when run is
// called, as an event loop would on its own goroutine.
type testLoop struct {
	mu      sync.Mutex
	pending []*Fanout
	spare   []*Fanout
}

func (l *testLoop) Fanout(fo *Fanout) {
	l.mu.Lock()
	l.pending = append(l.pending, fo)
	l.mu.Unlock()
}

// run delivers the queued Fanouts and returns how many there were.
func (l *testLoop) run() int {
	l.mu.Lock()
	fos := l.pending
	l.pending = l.spare[:0]
	l.mu.Unlock()
	defer func() { clear(fos); l.spare = fos }()
	for _, fo := range fos {
		for i := range fo.Len() {
			if s := fo.Sender(i); s != nil {
				s.Send(fo.Frame(), fo.Droppable())
			}
		}
		fo.Release()
	}
	return len(fos)
}

// loopSender is a recorder that belongs to a testLoop.
type loopSender struct {
	recorder
	l *testLoop
}

func (s *loopSender) Group() Group { return s.l }

// A room follows a model of its membership through random joins, leaves,
// re-joins and swaps (compacting its lists many times on the way):
// Members and the callbacks' lists are in join order, Len and Lookup
// agree, and a broadcast reaches each member once.
func TestMembershipModel(t *testing.T) {
	for _, fanMin := range []int{1, 1 << 30} {
		t.Run(fmt.Sprintf("fanoutMin=%d", fanMin), func(t *testing.T) {
			h := NewHub()
			h.SetFanoutMin(fanMin)
			loops := []*testLoop{{}, {}, {}}
			r := h.Create("R", 0)
			var model []*Member
			rng := rand.New(rand.NewPCG(1, 2))
			newMember := func(id string) *Member {
				var c Sender = &recorder{}
				if k := rng.IntN(4); k < len(loops) {
					c = &loopSender{l: loops[k]}
				}
				return &Member{ID: id, Conn: c}
			}
			check := func(step int, got []*Member) {
				t.Helper()
				if !slices.Equal(ids(got), ids(model)) {
					t.Fatalf("step %d: members %v, want %v", step, ids(got), ids(model))
				}
			}
			for step := range 3000 {
				switch op := rng.IntN(10); {
				case op < 5 || len(model) == 0: // join
					m := newMember("m" + strconv.Itoa(rng.IntN(400)))
					old, err := r.Join(m, func(*Member) error { return nil }, func(ms []*Member) {
						next := slices.DeleteFunc(slices.Clone(model), func(x *Member) bool { return x.ID == m.ID })
						if !slices.Equal(ids(ms), ids(append(next, m))) {
							t.Fatalf("step %d: before got %v", step, ids(ms))
						}
					})
					if err != nil {
						t.Fatal(err)
					}
					if old != nil {
						model = slices.DeleteFunc(model, func(x *Member) bool { return x == old })
					}
					model = append(model, m)
				case op < 8: // leave
					m := model[rng.IntN(len(model))]
					model = slices.DeleteFunc(model, func(x *Member) bool { return x == m })
					removed, n := r.LeaveThen(m, func(ms []*Member) { check(step, ms) })
					if !removed || n != len(model) {
						t.Fatalf("step %d: leave %v %d, want %d", step, removed, n, len(model))
					}
					if n == 0 {
						r = h.Create("R", 0)
					}
				default: // swap
					i := rng.IntN(len(model))
					nw := newMember(model[i].ID)
					if !r.Swap(model[i], nw, func(ms []*Member) {}) {
						t.Fatalf("step %d: swap refused", step)
					}
					model[i] = nw
				}
				check(step, r.Members())
				if r.Len() != len(model) {
					t.Fatalf("step %d: Len %d, want %d", step, r.Len(), len(model))
				}
				if len(model) > 0 && r.Lookup(model[0].ID) != model[0] {
					t.Fatalf("step %d: Lookup", step)
				}
				if step%50 == 0 && len(model) > 0 {
					f := text(`{"n":` + strconv.Itoa(step) + `}`)
					except := model[0].Conn
					r.Broadcast(f, except, false)
					f.Release()
					for _, l := range loops {
						l.run()
					}
					for i, m := range model {
						var rec *recorder
						switch c := m.Conn.(type) {
						case *recorder:
							rec = c
						case *loopSender:
							rec = &c.recorder
						}
						got := rec.frames()
						want := 1
						if i == 0 {
							want = 0
						}
						if n := len(got); (n > 0 && got[n-1] == `{"n":`+strconv.Itoa(step)+`}`) != (want == 1) {
							t.Fatalf("step %d: member %s got %v", step, m.ID, got)
						}
					}
				}
			}
		})
	}
}

// A snapshot a reader holds is not disturbed by later joins (they append
// past it) and skips the members that left since.
func TestSnapshotStable(t *testing.T) {
	r := NewHub().Create("R", 0)
	var ms []*Member
	for i := range 10 {
		m, _ := member(strconv.Itoa(i))
		mustJoin(t, r, m)
		ms = append(ms, m)
	}
	snap := r.snap.Load()
	for i := 10; i < 100; i++ {
		m, _ := member(strconv.Itoa(i))
		mustJoin(t, r, m)
	}
	r.Leave(ms[4])
	if len(snap.order) != 10 {
		t.Fatalf("snapshot grew to %d", len(snap.order))
	}
	n := 0
	for i, sl := range snap.order {
		if m := sl.m.Load(); m != nil {
			if m != ms[i] {
				t.Fatalf("slot %d holds %s", i, m.ID)
			}
			n++
		}
	}
	if n != 9 {
		t.Fatalf("%d live in the old snapshot, want 9 (one left)", n)
	}
}

// A big room hands each loop one Fanout holding that loop's members; a
// small room and members without a loop are sent to directly.
func TestBroadcastFansOutPerLoop(t *testing.T) {
	h := NewHub()
	h.SetFanoutMin(10)
	r := h.Create("R", 0)
	loops := []*testLoop{{}, {}}
	var members []*loopSender
	plain := &recorder{}
	mustJoin(t, r, &Member{ID: "plain", Conn: plain})
	for i := range 20 {
		s := &loopSender{l: loops[i%2]}
		members = append(members, s)
		mustJoin(t, r, &Member{ID: strconv.Itoa(i), Conn: s})
	}
	f := text(`"big"`)
	defer f.Release()
	if n := r.Broadcast(f, members[0], false); n != 20 {
		t.Fatalf("Broadcast counted %d, want 20", n)
	}
	if len(plain.frames()) != 1 {
		t.Fatal("member without a loop not sent to directly")
	}
	if len(members[1].frames()) != 0 {
		t.Fatal("a looped member was sent to from the broadcaster")
	}
	for i, l := range loops {
		if k := l.run(); k != 1 {
			t.Fatalf("loop %d got %d fanouts, want 1", i, k)
		}
	}
	for i, s := range members {
		if got := len(s.frames()); got != min(i, 1) {
			t.Fatalf("member %d got %d frames", i, got)
		}
	}
	if f.refs.Load() != 1 {
		t.Fatalf("frame refs %d after the fanouts, want 1", f.refs.Load())
	}
	h.SetFanoutMin(100) // now a small room: direct sends
	r.Broadcast(f, nil, false)
	if len(members[0].frames()) != 1 || loops[0].run() != 0 {
		t.Fatal("small room did not send directly")
	}
}

// Broadcast to 10,000 members allocates nothing, directly or through the
// loops' Fanouts (pooled).
func TestBroadcast10kDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items under -race")
	}
	for _, looped := range []bool{false, true} {
		t.Run(fmt.Sprint("looped=", looped), func(t *testing.T) {
			r := NewHub().Create("R", 0)
			loops := []*testLoop{{}, {}}
			for i := range 10000 {
				var c Sender = &nopSender{id: i}
				if looped {
					c = &nopLooped{nopSender{id: i}, loops[i%2]}
				}
				mustJoin(t, r, &Member{ID: strconv.Itoa(i), Conn: c})
			}
			f := text(`{"type":"message","from":"x","data":1}`)
			defer f.Release()
			except := r.Members()[3].Conn
			if n := testing.AllocsPerRun(100, func() {
				if r.Broadcast(f, except, false) != 9999 {
					panic("wrong count")
				}
				for _, l := range loops {
					l.run()
				}
			}); n != 0 {
				t.Fatalf("Broadcast allocates %.1f times per call, want 0", n)
			}
		})
	}
}

type nopLooped struct {
	nopSender
	l *testLoop
}

func (s *nopLooped) Group() Group { return s.l }

// While a room's Fanout is not delivered, its later frames (broadcasts,
// even in a room now too small to fan out, and SendTo) go the same way,
// so a member receives them in order; once delivered, SendTo is direct.
func TestFanoutKeepsRoomOrder(t *testing.T) {
	h := NewHub()
	h.SetFanoutMin(3)
	r := h.Create("R", 0)
	l := &testLoop{}
	var ms []*Member
	for i := range 3 {
		m := &Member{ID: strconv.Itoa(i), Conn: &loopSender{l: l}}
		mustJoin(t, r, m)
		ms = append(ms, m)
	}
	send := func(s string, fn func(*Frame)) {
		f := text(`"` + s + `"`)
		fn(f)
		f.Release()
	}
	send("1", func(f *Frame) { r.Broadcast(f, nil, false) })
	r.Leave(ms[2]) // 2 members: under FanoutMin
	send("2", func(f *Frame) { r.Broadcast(f, nil, false) })
	send("3", func(f *Frame) { r.SendTo(ms[0], f, false) })
	rec := &ms[0].Conn.(*loopSender).recorder
	if len(rec.frames()) != 0 {
		t.Fatalf("sent around the queued Fanout: %v", rec.frames())
	}
	if k := l.run(); k != 3 {
		t.Fatalf("%d fanouts, want 3", k)
	}
	if got := rec.frames(); !slices.Equal(got, []string{`"1"`, `"2"`, `"3"`}) {
		t.Fatalf("member got %v", got)
	}
	if r.fans.Load() != 0 {
		t.Fatalf("%d fanouts outstanding", r.fans.Load())
	}
	send("4", func(f *Frame) { r.SendTo(ms[0], f, false) })
	send("5", func(f *Frame) { r.Broadcast(f, nil, false) })
	if got := rec.frames(); !slices.Equal(got[3:], []string{`"4"`, `"5"`}) || l.run() != 0 {
		t.Fatalf("small idle room not sent to directly: %v", got)
	}
}
