package routing

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
)

// recorder is a Sender that records every frame's payload in order.
type recorder struct {
	mu     sync.Mutex
	got    []string
	refuse bool // Send reports false (a closed connection)
	drops  int  // droppable frames seen
}

func (r *recorder) Send(f *Frame, droppable bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if droppable {
		r.drops++
	}
	if r.refuse {
		return false
	}
	r.got = append(r.got, string(payload(f)))
	return true
}

func (r *recorder) frames() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// payload strips the frame header.
func payload(f *Frame) []byte {
	b := f.Bytes()
	switch n := b[1] & 0x7f; n {
	case 126:
		return b[4:]
	case 127:
		return b[10:]
	default:
		return b[2:]
	}
}

func text(s string) *Frame { return NewTextFrom([]byte(s)) }

func member(id string) (*Member, *recorder) {
	r := &recorder{}
	return &Member{ID: id, Conn: r}, r
}

func ids(ms []*Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

func TestHubCreateGetDelete(t *testing.T) {
	h := NewHub()
	if h.Get("A") != nil || h.Rooms() != 0 || h.Members() != 0 {
		t.Fatal("new hub is not empty")
	}
	a := h.Create("A", 3)
	if a == nil || a.Name != "A" || a.Max != 3 || a.Created.IsZero() {
		t.Fatalf("Create: %+v", a)
	}
	if h.Create("A", 5) != nil {
		t.Fatal("Create of a taken name succeeded")
	}
	if h.Get("A") != a || h.Get("a") != nil {
		t.Fatal("Get: wrong room (names are case-sensitive at this level)")
	}
	for i := range 100 {
		if h.Create(fmt.Sprint("R", i), 0) == nil {
			t.Fatalf("Create R%d failed", i)
		}
	}
	if h.Rooms() != 101 {
		t.Fatalf("Rooms = %d, want 101", h.Rooms())
	}
	seen := 0
	h.Range(func(*Room) bool { seen++; return true })
	if seen != 101 {
		t.Fatalf("Range saw %d rooms, want 101", seen)
	}
	seen = 0
	h.Range(func(*Room) bool { seen++; return seen < 7 })
	if seen != 7 {
		t.Fatalf("Range did not stop when told: %d calls", seen)
	}

	m1, _ := member("m1")
	m2, _ := member("m2")
	mustJoin(t, a, m1)
	mustJoin(t, a, m2)
	if h.Members() != 2 {
		t.Fatalf("Members = %d, want 2", h.Members())
	}
	if removed, left := a.Leave(m1); !removed || left != 1 {
		t.Fatalf("Leave = %v, %d", removed, left)
	}
	if h.Get("A") != a || h.Rooms() != 101 {
		t.Fatal("a room with a member left was deleted")
	}
	if removed, left := a.Leave(m2); !removed || left != 0 {
		t.Fatalf("Leave = %v, %d", removed, left)
	}
	if h.Get("A") != nil || h.Rooms() != 100 || h.Members() != 0 {
		t.Fatalf("empty room not deleted: Get=%v Rooms=%d Members=%d", h.Get("A"), h.Rooms(), h.Members())
	}
	// A dead room refuses joins; its name is free again.
	m3, _ := member("m3")
	if _, err := a.Join(m3, nil, nil); err != ErrRoomGone {
		t.Fatalf("Join of a deleted room: %v, want ErrRoomGone", err)
	}
	b := h.Create("A", 0)
	if b == nil || b == a {
		t.Fatal("the name of a deleted room could not be reused")
	}
	mustJoin(t, b, m3)
	if h.Rooms() != 101 || h.Members() != 1 {
		t.Fatalf("Rooms=%d Members=%d, want 101 and 1", h.Rooms(), h.Members())
	}
	// A stale Leave of the dead room changes nothing.
	if removed, _ := a.Leave(m1); removed {
		t.Fatal("Leave of a member that already left reported removed")
	}
	if h.Get("A") != b || h.Rooms() != 101 {
		t.Fatal("a stale Leave of the old room touched the new one")
	}
}

func mustJoin(t *testing.T, r *Room, m *Member) {
	t.Helper()
	if old, err := r.Join(m, nil, nil); err != nil || old != nil {
		t.Fatalf("Join %s: %v, %v", m.ID, old, err)
	}
}

func TestHubGetOrCreateAndJoinOrCreate(t *testing.T) {
	h := NewHub()
	r := h.GetOrCreate("x")
	if r == nil || r.Max != 0 || h.GetOrCreate("x") != r {
		t.Fatal("GetOrCreate did not return one room")
	}
	m, _ := member("m")
	mustJoin(t, r, m)
	r.Leave(m) // deletes r
	m2, _ := member("m2")
	r2, old, err := h.JoinOrCreate("x", m2, nil, nil)
	if err != nil || old != nil || r2 == r || r2.Len() != 1 || h.Get("x") != r2 {
		t.Fatalf("JoinOrCreate after deletion: %v %v %v", r2, old, err)
	}
	// A dead room still reachable by a racing Get: JoinOrCreate retries.
	dead := newRoom(h, h.shardFor("y"), "y", 0)
	dead.dead = true
	h.shardFor("y").rooms.Store("y", dead)
	h.shardFor("y").count.Add(1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		m3, _ := member("m3")
		r3, _, err := h.JoinOrCreate("y", m3, nil, nil)
		if err != nil || r3 == dead {
			t.Errorf("JoinOrCreate joined %v, %v", r3, err)
		}
	}()
	// Remove the dead room as its last Leave would have.
	h.remove(dead)
	<-done
}

func TestRoomJoinOrderAndCapacity(t *testing.T) {
	h := NewHub()
	r := h.Create("R", 3)
	var ms []*Member
	for _, id := range []string{"a", "b", "c"} {
		m, _ := member(id)
		mustJoin(t, r, m)
		ms = append(ms, m)
	}
	if got := ids(r.Members()); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("Members %q", got)
	}
	d, _ := member("d")
	called := false
	if _, err := r.Join(d, nil, func([]*Member) { called = true }); err != ErrRoomFull {
		t.Fatalf("Join of a full room: %v", err)
	}
	if called || r.Len() != 3 || r.Lookup("d") != nil {
		t.Fatal("a refused join changed the room or ran before")
	}
	if r.Lookup("b") != ms[1] {
		t.Fatal("Lookup")
	}
	// Leaving frees a slot; order of the rest is kept.
	r.Leave(ms[1])
	mustJoin(t, r, d)
	if got := ids(r.Members()); !slices.Equal(got, []string{"a", "c", "d"}) {
		t.Fatalf("Members %q", got)
	}
	// Max 0 is unlimited.
	u := h.Create("U", 0)
	for i := range 5000 {
		m, _ := member(fmt.Sprint(i))
		mustJoin(t, u, m)
	}
	if u.Len() != 5000 || h.Members() != 5003 {
		t.Fatalf("Len=%d Members=%d", u.Len(), h.Members())
	}
}

func TestRoomDuplicateAndReplace(t *testing.T) {
	h := NewHub()
	r := h.Create("R", 2)
	a, _ := member("a")
	b, _ := member("b")
	mustJoin(t, r, a)
	mustJoin(t, r, b)

	b2, _ := member("b")
	if _, err := r.Join(b2, nil, nil); err != ErrExists {
		t.Fatalf("duplicate ID without replace: %v, want ErrExists", err)
	}
	errNo := errors.New("no")
	var offered *Member
	if _, err := r.Join(b2, func(old *Member) error { offered = old; return errNo }, func([]*Member) {
		t.Error("before ran for a refused replacement")
	}); err != errNo {
		t.Fatalf("refused replacement: %v, want the replace error", err)
	}
	if offered != b || r.Lookup("b") != b {
		t.Fatal("refused replacement: wrong old member offered, or b was replaced")
	}

	// Accepted replacement: works in a full room, the new member joins last, returns old.
	var seen []string
	old, err := r.Join(b2, func(*Member) error { return nil }, func(next []*Member) { seen = ids(next) })
	if err != nil || old != b {
		t.Fatalf("replacement: old %v err %v", old, err)
	}
	if !slices.Equal(seen, []string{"a", "b"}) || r.Members()[1] != b2 || r.Lookup("b") != b2 {
		t.Fatalf("replacement: before saw %q, slot 1 is %p (want %p)", seen, r.Members()[1], b2)
	}
	if r.Len() != 2 || h.Members() != 2 {
		t.Fatalf("replacement changed counts: Len=%d Members=%d", r.Len(), h.Members())
	}
	// The replaced member's Leave is a no-op: it must not remove b2.
	if removed, left := r.Leave(b); removed || left != 2 {
		t.Fatalf("Leave of the replaced member = %v, %d", removed, left)
	}
	a2, _ := member("a")
	if _, err := r.Join(a2, func(*Member) error { return nil }, nil); err != nil {
		t.Fatal(err)
	}
	if got := ids(r.Members()); !slices.Equal(got, []string{"b", "a"}) || r.Members()[1] != a2 {
		t.Fatalf("replacing the first member: order %q, want the replacement last", got)
	}
	if r.Lookup("b") != b2 || h.Get("R") != r {
		t.Fatal("Leave of the replaced member removed its successor")
	}
	if removed, _ := r.Leave(b2); !removed {
		t.Fatal("Leave of the current member failed")
	}
	if removed, _ := r.Leave(b2); removed {
		t.Fatal("a second Leave reported removed")
	}
}

func TestRoomExt(t *testing.T) {
	r := NewHub().Create("R", 0)
	if r.Ext() != nil {
		t.Fatal("Ext of a new room is not nil")
	}
	type st struct{ n int }
	s := &st{1}
	r.SetExt(s)
	if r.Ext().(*st) != s {
		t.Fatal("Ext did not return what SetExt stored")
	}
}

// TestBeforeOrdering checks the guarantee of Join's before callback: a frame
// it sends to the joiner reaches the joiner ahead of every broadcast that
// includes the joiner, even with broadcasts racing the join.
func TestBeforeOrdering(t *testing.T) {
	h := NewHub()
	r := h.Create("R", 0)
	anchor, _ := member("anchor")
	mustJoin(t, r, anchor)

	stop := make(chan struct{})
	var bcasts atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				f := text(`"broadcast"`)
				r.Broadcast(f, nil, false)
				f.Release()
				bcasts.Add(1)
			}
		}()
	}
	const joiners = 300
	recs := make([]*recorder, joiners)
	for i := range joiners {
		m, rec := member(fmt.Sprint("j", i))
		recs[i] = rec
		var inside []string
		var lenInside int
		_, err := r.Join(m, nil, func(next []*Member) {
			inside = ids(next)
			lenInside = r.Len() // the new membership is not visible yet
			f := text(`"welcome"`)
			m.Conn.Send(f, false)
			f.Release()
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(inside) != i+2 || inside[len(inside)-1] != m.ID {
			t.Fatalf("before saw %d members ending %q, want %d ending with the joiner", len(inside), inside[len(inside)-1], i+2)
		}
		if lenInside != i+1 {
			t.Fatalf("inside before, Len = %d: the joiner was visible (want %d)", lenInside, i+1)
		}
	}
	for bcasts.Load() < 1000 { // let broadcasts reach the last joiners too
	}
	close(stop)
	wg.Wait()
	for i, rec := range recs {
		got := rec.frames()
		if len(got) == 0 || got[0] != `"welcome"` {
			t.Fatalf("joiner %d: first frame %q, want the welcome", i, got[:min(len(got), 1)])
		}
		if slices.Contains(got[1:], `"welcome"`) {
			t.Fatalf("joiner %d: welcome twice", i)
		}
	}
}

// TestAnnouncementsUnderTheLock races joins and leaves that announce
// themselves from Join's before and LeaveThen's after: every member must
// hear of each join and leave that happened while it was in the room, and
// of no other, whatever the interleaving.
func TestAnnouncementsUnderTheLock(t *testing.T) {
	r := NewHub().Create("R", 0)
	anchor, arec := member("anchor")
	mustJoin(t, r, anchor)
	const n = 64
	ms := make([]*Member, n)
	recs := make([]*recorder, n)
	seen := make([][]string, n) // membership each joiner was handed
	for i := range ms {
		ms[i], recs[i] = member(fmt.Sprint("m", i))
	}
	var wg sync.WaitGroup
	for i, m := range ms {
		wg.Go(func() {
			_, err := r.Join(m, nil, func(next []*Member) {
				seen[i] = ids(next)
				f := text("+" + m.ID)
				r.Broadcast(f, m.Conn, false)
				f.Release()
			})
			if err != nil {
				t.Error(err)
				return
			}
			if i%2 == 0 {
				removed, _ := r.LeaveThen(m, func(rest []*Member) {
					if slices.Contains(rest, m) {
						t.Errorf("%s still in the membership after it left", m.ID)
					}
					f := text("-" + m.ID)
					r.Broadcast(f, nil, false)
					f.Release()
				})
				if !removed {
					t.Errorf("%s not removed", m.ID)
				}
			}
		})
	}
	wg.Wait()
	final := map[string]bool{"anchor": true}
	for i, m := range ms {
		if i%2 == 1 {
			final[m.ID] = true
		}
	}
	replay := func(who string, left bool, start []string, got []string) {
		view := map[string]bool{}
		for _, id := range start {
			view[id] = true
		}
		for _, g := range got {
			id := g[1:]
			switch {
			case g[0] == '+' && view[id], g[0] == '-' && !view[id]:
				t.Fatalf("%s: %q out of step with its view %v", who, g, view)
			}
			view[id] = g[0] == '+'
			if g[0] == '-' {
				delete(view, id)
			}
		}
		if !left && len(view) != len(final) {
			t.Fatalf("%s ends seeing %v, room is %v", who, view, final)
		}
	}
	replay("anchor", false, []string{"anchor"}, arec.frames())
	for i := range ms {
		replay(ms[i].ID, i%2 == 0, seen[i], recs[i].frames())
	}
	if r.Len() != len(final) {
		t.Fatalf("room has %d members, want %d", r.Len(), len(final))
	}
	// after does not run when the room empties or m was not a member.
	r2 := NewHub().Create("R2", 0)
	solo, _ := member("solo")
	mustJoin(t, r2, solo)
	ran := false
	if removed, rest := r2.LeaveThen(solo, func([]*Member) { ran = true }); !removed || rest != 0 || ran {
		t.Fatalf("last leave: removed %v rest %d after ran %v", removed, rest, ran)
	}
	if removed, _ := r.LeaveThen(solo, func([]*Member) { ran = true }); removed || ran {
		t.Fatal("LeaveThen of a non-member removed it or ran after")
	}
}

func TestBroadcastCounts(t *testing.T) {
	r := NewHub().Create("R", 0)
	var recs []*recorder
	var ms []*Member
	for i := range 5 {
		m, rec := member(fmt.Sprint(i))
		mustJoin(t, r, m)
		ms, recs = append(ms, m), append(recs, rec)
	}
	f := text(`{"n":1}`)
	defer f.Release()
	if n := r.Broadcast(f, nil, false); n != 5 {
		t.Fatalf("Broadcast to all = %d, want 5", n)
	}
	if n := r.Broadcast(f, ms[2].Conn, false); n != 4 {
		t.Fatalf("Broadcast except one = %d, want 4", n)
	}
	if got := recs[2].frames(); len(got) != 1 {
		t.Fatalf("the excepted member got %d frames, want 1", len(got))
	}
	recs[4].refuse = true // a closed connection: not counted
	if n := r.Broadcast(f, nil, true); n != 4 {
		t.Fatalf("Broadcast with one refusing = %d, want 4", n)
	}
	if recs[0].drops != 1 || recs[4].drops != 1 {
		t.Fatal("droppable flag not passed to Send")
	}
	if n := (LocalBroker{}).Publish(r, f, ms[0].Conn, false); n != 3 {
		t.Fatalf("LocalBroker.Publish = %d, want 3", n)
	}
	if got := recs[1].frames(); !slices.Equal(got, []string{`{"n":1}`, `{"n":1}`, `{"n":1}`, `{"n":1}`}) {
		t.Fatalf("member 1 got %q", got)
	}
	if n := NewHub().Create("E", 0).Broadcast(f, nil, false); n != 0 {
		t.Fatalf("Broadcast to an empty room = %d", n)
	}
}

// TestConcurrentJoinLeave hammers rooms from many goroutines; run with -race.
// Counters and membership must agree at the end.
func TestConcurrentJoinLeave(t *testing.T) {
	h := NewHub()
	const (
		workers = 8
		rounds  = 2000
		names   = 4
	)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				name := fmt.Sprint("room", (w+i)%names)
				m, _ := member(fmt.Sprintf("w%d-%d", w, i%3)) // IDs repeat: replacements
				r, old, err := h.JoinOrCreate(name, m, func(*Member) error { return nil }, nil)
				if err != nil {
					t.Errorf("JoinOrCreate: %v", err)
					return
				}
				f := text(`"x"`)
				r.Broadcast(f, nil, false)
				f.Release()
				if old != nil {
					if removed, _ := r.Leave(old); removed {
						t.Error("Leave of a replaced member removed it")
					}
				}
				if i%2 == 0 {
					if removed, _ := r.Leave(m); !removed && r.Lookup(m.ID) == m {
						t.Error("Leave of the current member failed")
					}
				}
			}
		}()
	}
	wg.Wait()
	var members int64
	rooms := int64(0)
	h.Range(func(r *Room) bool {
		rooms++
		members += int64(r.Len())
		if r.Len() == 0 {
			t.Errorf("room %s is empty but still in the hub", r.Name)
		}
		return true
	})
	if rooms != h.Rooms() || members != h.Members() {
		t.Fatalf("counters Rooms=%d Members=%d, counted %d and %d", h.Rooms(), h.Members(), rooms, members)
	}
	// Everyone leaves: the hub ends empty.
	h.Range(func(r *Room) bool {
		for _, m := range slices.Clone(r.Members()) {
			r.Leave(m)
		}
		return true
	})
	if h.Rooms() != 0 || h.Members() != 0 {
		t.Fatalf("after everyone left: Rooms=%d Members=%d", h.Rooms(), h.Members())
	}
}

// TestConcurrentJoinCapacity: joins racing for the free slots of one room
// never overfill it.
func TestConcurrentJoinCapacity(t *testing.T) {
	for round := range 20 {
		r := NewHub().Create("R", 5)
		var ok atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range 64 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				m, _ := member(fmt.Sprint(i))
				<-start
				if _, err := r.Join(m, nil, nil); err == nil {
					ok.Add(1)
				} else if err != ErrRoomFull {
					t.Errorf("Join: %v", err)
				}
			}()
		}
		close(start)
		wg.Wait()
		if ok.Load() != 5 || r.Len() != 5 {
			t.Fatalf("round %d: %d joins succeeded, Len %d; want 5", round, ok.Load(), r.Len())
		}
	}
}

// nopSender accepts every frame. Not zero-sized: each one is a distinct
// Sender (zero-sized values would all compare equal).
type nopSender struct{ id int }

func (*nopSender) Send(*Frame, bool) bool { return true }

func TestBroadcastDoesNotAllocate(t *testing.T) {
	r := NewHub().Create("R", 0)
	for i := range 100 {
		mustJoin(t, r, &Member{ID: fmt.Sprint(i), Conn: &nopSender{id: i}})
	}
	f := text(`{"type":"message","from":"x","data":1}`)
	defer f.Release()
	except := r.Members()[3].Conn
	if n := testing.AllocsPerRun(200, func() {
		if r.Broadcast(f, except, false) != 99 {
			panic("wrong count")
		}
	}); n != 0 {
		t.Fatalf("Broadcast allocates %.1f times per call, want 0", n)
	}
	if n := testing.AllocsPerRun(200, func() { (LocalBroker{}).Publish(r, f, nil, false) }); n != 0 {
		t.Fatalf("LocalBroker.Publish allocates %.1f times per call, want 0", n)
	}
}

// JoinAdmit lets the caller count capacity (here: members that are not
// Away), and CloseIf deletes a room with its members only when its
// condition holds under the lock.
func TestJoinAdmitAndCloseIf(t *testing.T) {
	h := NewHub()
	r := h.Create("R", 1) // Max is not checked by JoinAdmit
	live := func(ms []*Member) int {
		n := 0
		for _, m := range ms {
			if m.Conn != Away {
				n++
			}
		}
		return n
	}
	admit := func(max int) func(*Member, []*Member) error {
		return func(old *Member, ms []*Member) error {
			if old != nil && old.Conn != Away {
				return nil // a replacement
			}
			if live(ms) >= max {
				return ErrRoomFull
			}
			return nil
		}
	}
	if _, err := r.JoinAdmit(&Member{ID: "a", Conn: Away}, admit(2), nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"b", "c"} {
		if _, err := r.JoinAdmit(&Member{ID: id, Conn: &recorder{}}, admit(2), nil); err != nil {
			t.Fatalf("%s: %v (an away member does not count)", id, err)
		}
	}
	if _, err := r.JoinAdmit(&Member{ID: "d", Conn: &recorder{}}, admit(2), nil); err != ErrRoomFull {
		t.Fatalf("third live member: %v, want ErrRoomFull", err)
	}
	if old, err := r.JoinAdmit(&Member{ID: "b", Conn: &recorder{}}, admit(2), nil); err != nil || old == nil {
		t.Fatalf("replacement: %v %v", old, err)
	}
	if _, closed := r.CloseIf(func(ms []*Member) bool { return live(ms) == 0 }); closed {
		t.Fatal("closed a room with live members")
	}
	ms, closed := r.CloseIf(func([]*Member) bool { return true })
	if !closed || len(ms) != 3 || h.Get("R") != nil || r.Len() != 0 || h.Members() != 0 {
		t.Fatalf("CloseIf: %d members, closed %v, hub %v, members %d", len(ms), closed, h.Get("R"), h.Members())
	}
	if _, err := r.JoinAdmit(&Member{ID: "e", Conn: &recorder{}}, admit(2), nil); err != ErrRoomGone {
		t.Fatalf("join after close: %v", err)
	}
	if _, again := r.CloseIf(func([]*Member) bool { return true }); again {
		t.Fatal("closed twice")
	}
}

// TestLeaveThenAll: unlike LeaveThen, its after runs for the last member
// too, with no members, before OnGone.
func TestLeaveThenAll(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprint("all=", all), func(t *testing.T) {
			h := NewHub()
			var log []string
			h.OnGone(func(r *Room) { log = append(log, "gone "+r.Name) })
			r := h.Create("R", 0)
			a, b := &Member{ID: "a", Conn: &recorder{}}, &Member{ID: "b", Conn: &recorder{}}
			for _, m := range []*Member{a, b} {
				if _, err := r.Join(m, nil, nil); err != nil {
					t.Fatal(err)
				}
			}
			leave := r.LeaveThen
			if all {
				leave = r.LeaveThenAll
			}
			for _, m := range []*Member{a, b} {
				leave(m, func(rest []*Member) { log = append(log, fmt.Sprintf("after %s %d", m.ID, len(rest))) })
			}
			want := []string{"after a 1", "gone R"}
			if all {
				want = []string{"after a 1", "after b 0", "gone R"}
			}
			if !slices.Equal(log, want) {
				t.Fatalf("%q, want %q", log, want)
			}
		})
	}
}
