package routing

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// Errors from room membership changes.
var (
	ErrRoomGone = errors.New("room not found")
	ErrRoomFull = errors.New("room full")
	ErrExists   = errors.New("already a member")
)

// Member is one entry in a room. A Member value is immutable once added;
// replacing a connection installs a new Member in the same slot.
type Member struct {
	ID   string // dialect identity: clientId, username, connection id...
	Conn Sender
	Data any // dialect-owned, immutable after Join
}

// slot is one membership's place in a room's lists: the member (a Swap
// replaces it in place), or nil once it has left. Lock-free readers load
// it; only the room's lock holder stores it.
type slot struct {
	m atomic.Pointer[Member]
	g *group // the loop group it is filed under
}

// slots is an append-only array of slots. A published snapshot holds a
// prefix of it, so an append (which writes past every published prefix)
// never disturbs a reader; a member that leaves has its slot set to nil
// (readers skip it) and the array is compacted into a new one once dead
// slots outnumber live ones, or when it is full: every change is O(1)
// amortised. Guarded by Room.mu.
type slots struct {
	s    []*slot
	dead int
}

// minCompact keeps small lists from compacting on every other leave.
const minCompact = 16

func (l *slots) add(s *slot) {
	if len(l.s) == cap(l.s) {
		l.compact(max(2*(len(l.s)-l.dead), 8))
	}
	l.s = append(l.s, s)
}

// removed counts a slot that was set to nil.
func (l *slots) removed() {
	l.dead++
	if l.dead > minCompact && l.dead > len(l.s)-l.dead {
		l.compact(2 * (len(l.s) - l.dead))
	}
}

// compact moves the live slots, in order, to a new array of capacity c.
func (l *slots) compact(c int) {
	next := make([]*slot, 0, max(c, 8))
	for _, s := range l.s {
		if s.m.Load() != nil {
			next = append(next, s)
		}
	}
	l.s, l.dead = next, 0
}

// group is the members of a room whose connections belong to one Group
// (an event loop), g nil for members whose Sender has none.
type group struct {
	g    Group
	list slots
	live int
}

// snapshot is an immutable membership view: prefixes of the room's slot
// arrays taken under its lock.
type snapshot struct {
	order  []*slot     // join order
	groups []groupView // by loop
	n      int         // members
	looped bool        // some member belongs to a Group
	flat   []*Member   // the members in join order, when known at publish
	lazy   atomic.Pointer[[]*Member]
}

type groupView struct {
	g     Group
	slots []*slot
	live  int
}

// Room is a named set of members with lock-free fan-out.
type Room struct {
	Name    string
	Max     int // 0: unlimited
	Created time.Time

	hub   *Hub
	shard *shard
	snap  atomic.Pointer[snapshot]

	mu     sync.Mutex       // guards the following
	byID   map[string]*slot // the live members' slots by ID
	order  slots            // every slot in join order
	groups []*group         // the slots by loop group
	live   int              // members
	flat   []*Member        // the members in join order, valid when flatOK
	flatOK bool
	dead   bool     // removed from the hub: joins must fail
	off    *offsets // sequenced rooms only (history.go)

	fans atomic.Int64 // Fanouts handed to loops and not yet delivered (fanout.go)

	ext atomic.Value // dialect-owned state (see Ext/SetExt)
	bd  atomic.Value // broker-owned state (see BrokerData)
}

var emptySnap = &snapshot{}

func newRoom(h *Hub, sh *shard, name string, max int) *Room {
	r := &Room{Name: name, Max: max, Created: time.Now(), hub: h, shard: sh, byID: map[string]*slot{}, flatOK: true}
	r.snap.Store(emptySnap)
	return r
}

// Members returns the current members in join order. Lock-free (after a
// change that removed or swapped members, the first call builds the list
// once); the slice is shared and must not be modified.
func (r *Room) Members() []*Member {
	s := r.snap.Load()
	if s.flat != nil || s.n == 0 {
		return s.flat
	}
	if p := s.lazy.Load(); p != nil {
		return *p
	}
	list := make([]*Member, 0, s.n)
	for _, sl := range s.order {
		if m := sl.m.Load(); m != nil {
			list = append(list, m)
		}
	}
	s.lazy.CompareAndSwap(nil, &list)
	return *s.lazy.Load()
}

// Len is the current number of members.
func (r *Room) Len() int { return r.snap.Load().n }

// Lookup finds a member by ID.
func (r *Room) Lookup(id string) *Member {
	r.mu.Lock()
	m := r.LookupLockedID(id)
	r.mu.Unlock()
	return m
}

// LookupBytes is Lookup for an ID held in a byte slice, without allocating.
func (r *Room) LookupBytes(id []byte) *Member {
	r.mu.Lock()
	m := r.LookupLocked(id)
	r.mu.Unlock()
	return m
}

// membersLocked returns the members in join order for a callback: O(1)
// while members have only joined since it was last built, one copy of
// the list after a leave or a swap. Under r.mu.
func (r *Room) membersLocked() []*Member {
	if !r.flatOK {
		r.flat = make([]*Member, 0, r.live+r.live/4+1)
		for _, sl := range r.order.s {
			if m := sl.m.Load(); m != nil {
				r.flat = append(r.flat, m)
			}
		}
		r.flatOK = true
	}
	return r.flat
}

// groupOf returns the group for c's loop, creating it. Under r.mu.
func (r *Room) groupOf(c Sender) *group {
	var g Group
	if l, ok := c.(Looped); ok {
		g = l.Group()
	}
	for _, x := range r.groups {
		if x.g == g {
			return x
		}
	}
	x := &group{g: g}
	r.groups = append(r.groups, x)
	return x
}

// file adds m as the newest member. Under r.mu.
func (r *Room) file(m *Member) {
	sl := &slot{g: r.groupOf(m.Conn)}
	sl.m.Store(m)
	r.order.add(sl)
	sl.g.list.add(sl)
	sl.g.live++
	r.byID[m.ID] = sl
	r.live++
}

// unfile removes sl's member. Under r.mu.
func (r *Room) unfile(sl *slot) {
	sl.m.Store(nil)
	r.order.removed()
	sl.g.list.removed()
	sl.g.live--
	r.live--
	r.flat, r.flatOK = nil, false
}

// publish makes the current membership visible to fan-out. Under r.mu.
func (r *Room) publish() {
	if r.live == 0 {
		r.snap.Store(emptySnap)
		return
	}
	s := &snapshot{order: r.order.s, n: r.live, groups: make([]groupView, 0, len(r.groups))}
	for _, g := range r.groups {
		if g.live > 0 {
			s.groups = append(s.groups, groupView{g: g.g, slots: g.list.s, live: g.live})
			s.looped = s.looped || g.g != nil
		}
	}
	if r.flatOK {
		s.flat = r.flat
	}
	r.snap.Store(s)
}

// Join adds m. If a member with the same ID exists, replace decides: when it
// returns nil the old member is removed and m joins last (old is returned),
// otherwise Join fails with that error. A nil replace means IDs must be
// unique (ErrExists). The capacity check is atomic with the insert.
//
// before, if not nil, runs under the room's lock with the new membership
// just before it becomes visible to fan-out: frames it sends to m reach m
// ahead of any broadcast that includes m, and a Broadcast from it still
// reaches the old membership only, so a join announced there is seen by
// exactly the members that were present before it (never by a concurrent
// joiner that will list m among its peers). It must only queue frames.
//
// A join costs O(1) amortised at any room size; the members slice handed
// to before costs nothing extra after joins, one copy of the list after a
// leave.
func (r *Room) Join(m *Member, replace func(old *Member) error, before func(members []*Member)) (old *Member, err error) {
	return r.join(m, replace, nil, before)
}

// JoinAdmit is Join for a room whose capacity the caller counts itself
// (Max is not checked): admit runs under the room's lock with the current
// members for every join, old nil for a new ID, and a non-nil error
// refuses the join. A room whose members hold seats that do not count
// toward its capacity (kept while disconnected) admits this way.
func (r *Room) JoinAdmit(m *Member, admit func(old *Member, members []*Member) error, before func(members []*Member)) (old *Member, err error) {
	return r.join(m, nil, admit, before)
}

func (r *Room) join(m *Member, replace func(*Member) error, admit func(old *Member, members []*Member) error, before func(members []*Member)) (old *Member, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		return nil, ErrRoomGone
	}
	if sl := r.byID[m.ID]; sl != nil {
		old = sl.m.Load()
		switch {
		case admit != nil:
			err = admit(old, r.membersLocked())
		case replace != nil:
			err = replace(old)
		default:
			err = ErrExists
		}
		if err != nil {
			return nil, err
		}
		// A replacement is a re-join: the new member goes last.
		if before != nil {
			cur := r.membersLocked()
			next := make([]*Member, 0, len(cur))
			for _, x := range cur {
				if x != old {
					next = append(next, x)
				}
			}
			before(append(next, m))
		}
		r.unfile(sl)
		r.file(m)
		r.publish()
		return old, nil
	}
	if admit != nil {
		if err = admit(nil, r.membersLocked()); err != nil {
			return nil, err
		}
	} else if r.Max > 0 && r.live >= r.Max {
		return nil, ErrRoomFull
	}
	if r.live == 0 && r.hub.watch != nil {
		r.hub.watch.RoomActive(r) // before the joiner's frames: a broker may act on it
	}
	if before != nil || r.flatOK {
		// Appending writes past every list handed out before: O(1).
		r.flat = append(r.membersLocked(), m)
		if before != nil {
			before(r.flat)
		}
	}
	r.file(m)
	r.publish()
	r.shard.members.Add(1)
	return nil, nil
}

// Leave removes m if it is still the member for its ID, and reports whether
// it was removed and how many members remain. When the last member leaves
// the room is deleted from the hub. O(1) amortised.
func (r *Room) Leave(m *Member) (removed bool, remaining int) {
	return r.LeaveThen(m, nil)
}

// LeaveThen is Leave with after, which (if m was removed and members remain)
// runs under the room's lock once the smaller membership is visible to
// fan-out: a departure announced from it reaches exactly the members that
// remain, and no joiner that comes after the departure. Like Join's before,
// it must only queue frames. Its remaining slice costs one copy of the
// member list.
func (r *Room) LeaveThen(m *Member, after func(remaining []*Member)) (removed bool, remaining int) {
	return r.leave(m, after, false)
}

// LeaveThenAll is LeaveThen whose after also runs when m was the last
// member (with no members), before the room is deleted (and before
// OnGone): an event of the departure it records comes before the room's
// end.
func (r *Room) LeaveThenAll(m *Member, after func(remaining []*Member)) (removed bool, remaining int) {
	return r.leave(m, after, true)
}

func (r *Room) leave(m *Member, after func(remaining []*Member), last bool) (removed bool, remaining int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sl := r.byID[m.ID]
	if sl == nil || sl.m.Load() != m {
		return false, r.live
	}
	delete(r.byID, m.ID)
	r.unfile(sl)
	r.publish()
	r.shard.members.Add(-1)
	if (r.live > 0 || last) && after != nil {
		after(r.membersLocked())
	}
	if r.live == 0 {
		r.dieLocked()
	}
	return true, r.live
}

// dieLocked deletes the emptied room from its hub. Under r.mu.
func (r *Room) dieLocked() {
	r.dead = true
	r.dropHistoryLocked()
	if r.hub.gone != nil {
		r.hub.gone(r)
	}
	r.hub.remove(r)
	if r.hub.watch != nil {
		r.hub.watch.RoomIdle(r)
	}
}

// Discard takes a room that never had members out of its hub, as the
// last leave would (OnGone runs, history is dropped, joins fail from now
// on; no RoomIdle, since it was never active), and reports whether the
// room is gone; a room with members stays.
func (r *Room) Discard() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.live > 0 {
		return false
	}
	if r.dead {
		return true
	}
	r.dead = true
	r.dropHistoryLocked()
	if r.hub.gone != nil {
		r.hub.gone(r)
	}
	r.hub.remove(r)
	return true
}

// CloseIf deletes the room with every member in it if cond, run under the
// room's lock with the current members, holds: later joins fail with
// ErrRoomGone and the room leaves its hub at once. It returns the members
// it removed (the caller closes their connections) and whether it closed
// the room; a room already deleted is not closed again.
func (r *Room) CloseIf(cond func(members []*Member) bool) ([]*Member, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		return nil, false
	}
	cur := r.membersLocked()
	if !cond(cur) {
		return nil, false
	}
	for _, sl := range r.byID {
		sl.m.Store(nil)
	}
	clear(r.byID)
	r.order, r.groups, r.live, r.flat, r.flatOK = slots{}, nil, 0, nil, true
	r.snap.Store(emptySnap)
	r.shard.members.Add(-int64(len(cur)))
	r.dieLocked()
	return cur, true
}

// Swap puts nw in old's place (same ID, same position) if old is still the
// member for its ID, and reports whether it did. after, if not nil, runs
// under the room's lock once the swap is visible to fan-out, like
// LeaveThen's. A seat kept for a member whose connection dropped is such a
// swap: the seat keeps its place and counts toward Max.
func (r *Room) Swap(old, nw *Member, after func(members []*Member)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	sl := r.byID[old.ID]
	if sl == nil || sl.m.Load() != old || nw.ID != old.ID {
		return false
	}
	sl.m.Store(nw) // the slot stays in old's loop group: fan-out sends to nw wherever it is
	r.flatOK = false
	r.publish()
	if after != nil {
		after(r.membersLocked())
	}
	return true
}

// Locked runs fn with the current members under the room's lock (fn must
// only record or queue, never block).
func (r *Room) Locked(fn func(members []*Member)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r.membersLocked())
}

// Hub is the hub the room belongs to.
func (r *Room) Hub() *Hub { return r.hub }

// BrokerData returns state a broker attached to the room (nil if none).
// Lock-free.
func (r *Room) BrokerData() any { return r.bd.Load() }

// SetBrokerData attaches broker state to the room; every call must pass the
// same concrete type.
func (r *Room) SetBrokerData(v any) { r.bd.Store(v) }

// Ext returns dialect-owned room state (nil if never set). Lock-free; safe
// inside Join's before callback.
func (r *Room) Ext() any { return r.ext.Load() }

// SetExt sets dialect-owned room state; every call must pass the same
// concrete type.
func (r *Room) SetExt(v any) { r.ext.Store(v) }
