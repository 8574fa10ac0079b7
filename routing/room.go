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

// snapshot is an immutable membership view.
type snapshot struct {
	list []*Member // join order
}

// Room is a named set of members with lock-free fan-out.
type Room struct {
	Name    string
	Max     int // 0: unlimited
	Created time.Time

	hub   *Hub
	shard *shard
	snap  atomic.Pointer[snapshot]

	mu   sync.Mutex         // guards the following
	byID map[string]*Member // index of the current snapshot by ID
	dead bool               // removed from the hub: joins must fail
	off  *offsets           // sequenced rooms only (history.go)

	ext atomic.Value // dialect-owned state (see Ext/SetExt)
	bd  atomic.Value // broker-owned state (see BrokerData)
}

var emptySnap = &snapshot{}

func newRoom(h *Hub, sh *shard, name string, max int) *Room {
	r := &Room{Name: name, Max: max, Created: time.Now(), hub: h, shard: sh, byID: map[string]*Member{}}
	r.snap.Store(emptySnap)
	return r
}

// Members returns the current members in join order. Lock-free; the slice
// is shared and must not be modified.
func (r *Room) Members() []*Member { return r.snap.Load().list }

// Len is the current number of members.
func (r *Room) Len() int { return len(r.snap.Load().list) }

// Lookup finds a member by ID.
func (r *Room) Lookup(id string) *Member {
	r.mu.Lock()
	m := r.byID[id]
	r.mu.Unlock()
	return m
}

// LookupBytes is Lookup for an ID held in a byte slice, without allocating.
func (r *Room) LookupBytes(id []byte) *Member {
	r.mu.Lock()
	m := r.byID[string(id)]
	r.mu.Unlock()
	return m
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
func (r *Room) Join(m *Member, replace func(old *Member) error, before func(members []*Member)) (old *Member, err error) {
	var admit func(*Member, []*Member) error
	if replace != nil {
		admit = func(old *Member, _ []*Member) error { return replace(old) }
	}
	return r.join(m, admit, false, before)
}

// JoinAdmit is Join for a room whose capacity the caller counts itself
// (Max is not checked): admit runs under the room's lock with the current
// members for every join, old nil for a new ID, and a non-nil error
// refuses the join. A room whose members hold seats that do not count
// toward its capacity (kept while disconnected) admits this way.
func (r *Room) JoinAdmit(m *Member, admit func(old *Member, members []*Member) error, before func(members []*Member)) (old *Member, err error) {
	return r.join(m, admit, true, before)
}

func (r *Room) join(m *Member, admit func(old *Member, members []*Member) error, always bool, before func(members []*Member)) (old *Member, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.dead {
		return nil, ErrRoomGone
	}
	cur := r.snap.Load().list
	if old = r.byID[m.ID]; old != nil {
		if admit == nil {
			return nil, ErrExists
		}
		if err = admit(old, cur); err != nil {
			return nil, err
		}
		// A replacement is a re-join: the new member goes last.
		next := make([]*Member, 0, len(cur))
		for _, x := range cur {
			if x != old {
				next = append(next, x)
			}
		}
		next = append(next, m)
		if before != nil {
			before(next)
		}
		r.byID[m.ID] = m
		r.snap.Store(&snapshot{list: next})
		return old, nil
	}
	if always {
		if err = admit(nil, cur); err != nil {
			return nil, err
		}
	} else if r.Max > 0 && len(cur) >= r.Max {
		return nil, ErrRoomFull
	}
	if len(cur) == 0 && r.hub.watch != nil {
		r.hub.watch.RoomActive(r) // before the joiner's frames: a broker may act on it
	}
	next := make([]*Member, len(cur)+1)
	copy(next, cur)
	next[len(cur)] = m
	if before != nil {
		before(next)
	}
	r.byID[m.ID] = m
	r.snap.Store(&snapshot{list: next})
	r.shard.members.Add(1)
	return nil, nil
}

// Leave removes m if it is still the member for its ID, and reports whether
// it was removed and how many members remain. When the last member leaves
// the room is deleted from the hub.
func (r *Room) Leave(m *Member) (removed bool, remaining int) {
	return r.LeaveThen(m, nil)
}

// LeaveThen is Leave with after, which (if m was removed and members remain)
// runs under the room's lock once the smaller membership is visible to
// fan-out: a departure announced from it reaches exactly the members that
// remain, and no joiner that comes after the departure. Like Join's before,
// it must only queue frames.
func (r *Room) LeaveThen(m *Member, after func(remaining []*Member)) (removed bool, remaining int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cur := r.snap.Load().list
	if r.byID[m.ID] != m {
		return false, len(cur)
	}
	delete(r.byID, m.ID)
	next := make([]*Member, 0, len(cur)-1)
	for _, x := range cur {
		if x != m {
			next = append(next, x)
		}
	}
	if len(next) == 0 {
		r.snap.Store(emptySnap)
	} else {
		r.snap.Store(&snapshot{list: next})
	}
	r.shard.members.Add(-1)
	if len(next) > 0 && after != nil {
		after(next)
	}
	if len(next) == 0 {
		r.dieLocked()
	}
	return true, len(next)
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
	if len(r.snap.Load().list) > 0 {
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
	cur := r.snap.Load().list
	if r.dead || !cond(cur) {
		return nil, false
	}
	clear(r.byID)
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
	if r.byID[old.ID] != old || nw.ID != old.ID {
		return false
	}
	cur := r.snap.Load().list
	next := make([]*Member, len(cur))
	for i, x := range cur {
		if x == old {
			x = nw
		}
		next[i] = x
	}
	r.byID[nw.ID] = nw
	r.snap.Store(&snapshot{list: next})
	if after != nil {
		after(next)
	}
	return true
}

// Locked runs fn with the current members under the room's lock (fn must
// only record or queue, never block).
func (r *Room) Locked(fn func(members []*Member)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(r.snap.Load().list)
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

// Broadcast queues f for every member except the one whose Conn is except
// (nil: everyone) and returns the number of members it was queued for.
// It reads one snapshot and takes no lock.
func (r *Room) Broadcast(f *Frame, except Sender, droppable bool) int {
	n := 0
	for _, m := range r.snap.Load().list {
		if m.Conn != except && m.Conn.Send(f, droppable) {
			n++
		}
	}
	return n
}
