package routing

import "sync"

// Fan-out across event loops. A Sender that belongs to an event loop (a
// server connection) says so by implementing Looped; a room files its
// members by loop, and a broadcast to a room of at least Hub.FanoutMin
// members hands each loop one Fanout (the frame and that loop's members)
// instead of queueing the frame to every member from the sender's
// goroutine. Smaller rooms, and members without a loop, are sent to
// directly, as Broadcast always did.
//
// Ordering: a loop delivers its Fanouts in the order they were handed to
// it, and a room keeps using Fanouts (for Broadcast and SendTo) as long as
// one of its Fanouts is not delivered yet, so a member receives the frames
// a room sends through Broadcast and SendTo in the order they were sent
// (for a sequenced room: in seq order). A frame queued with Sender.Send
// directly can overtake a Fanout still queued on the member's loop: a
// dialect sends a member's room traffic through the room.

// Group is where a Looped sender's frames are written: one event loop.
type Group interface {
	// Fanout takes fo and delivers it on the group's goroutine, in the
	// order Fanout was called, then calls fo.Release. Safe from any
	// goroutine; must not block.
	Fanout(fo *Fanout)
}

// Looped is implemented by a Sender that belongs to a Group.
type Looped interface {
	Group() Group
}

// DefaultFanoutMin is the room size from which a broadcast goes through
// the members' loops (Hub.FanoutMin): below it, queueing to each member
// from the sender is cheaper than waking every loop (bench/RESULTS.md).
const DefaultFanoutMin = 512

// Fanout is one broadcast handed to a Group: the frame and the group's
// members as the broadcast found them. Pooled: valid until Release.
type Fanout struct {
	f         *Frame
	slots     []*slot
	to        Sender // SendTo's one recipient (slots is nil)
	except    Sender
	droppable bool
	room      *Room
}

var fanoutPool = sync.Pool{New: func() any { return new(Fanout) }}

// Frame is the frame to deliver; the Fanout holds a reference until Release.
func (fo *Fanout) Frame() *Frame { return fo.f }

// Droppable reports whether the frame may be shed by a lagging connection.
func (fo *Fanout) Droppable() bool { return fo.droppable }

// Len is the number of places to deliver to (see Sender).
func (fo *Fanout) Len() int {
	if fo.to != nil {
		return 1
	}
	return len(fo.slots)
}

// Sender returns the i-th member's Sender, or nil when that member has
// left since, or is the one the broadcast excepted. A member swapped in
// since (Room.Swap) may belong to another group, or to none.
func (fo *Fanout) Sender(i int) Sender {
	if fo.to != nil {
		return fo.to
	}
	m := fo.slots[i].m.Load()
	if m == nil || m.Conn == fo.except {
		return nil
	}
	return m.Conn
}

// Release drops the frame reference and recycles fo.
func (fo *Fanout) Release() {
	fo.room.fans.Add(-1)
	fo.f.Release()
	*fo = Fanout{}
	fanoutPool.Put(fo)
}

// Broadcast queues f for every member except the one whose Conn is except
// (nil: everyone) and returns the number of members it was queued for.
// It reads one snapshot and takes no lock: it reaches every member of the
// snapshot that has not left by the time it is reached (never one that
// joined after the snapshot). In a room of at least Hub.FanoutMin
// members, the members of each loop get f through one Fanout to that
// loop; the count is then the members handed to the loops.
func (r *Room) Broadcast(f *Frame, except Sender, droppable bool) int {
	s := r.snap.Load()
	if s.looped && (s.n >= r.hub.FanoutMin() || r.fans.Load() > 0) {
		return r.fanout(s, f, except, droppable)
	}
	return sendAll(s.order, f, except, droppable)
}

// SendTo queues f for the member m of r alone, behind the frames r sent it
// earlier through Broadcast and SendTo (see Fanout): for a frame to one
// member that is part of the room's traffic. Any goroutine; it reports
// whether f was queued (or handed to m's loop).
func (r *Room) SendTo(m *Member, f *Frame, droppable bool) bool {
	if r.fans.Load() > 0 {
		if l, ok := m.Conn.(Looped); ok {
			fo := r.newFanout(f, droppable)
			fo.to = m.Conn
			l.Group().Fanout(fo)
			return true
		}
	}
	return m.Conn.Send(f, droppable)
}

// newFanout takes a pooled Fanout holding a reference to f and counts it
// as outstanding for r.
func (r *Room) newFanout(f *Frame, droppable bool) *Fanout {
	fo := fanoutPool.Get().(*Fanout)
	f.Retain()
	r.fans.Add(1)
	fo.f, fo.droppable, fo.room = f, droppable, r
	return fo
}

func sendAll(list []*slot, f *Frame, except Sender, droppable bool) int {
	n := 0
	for _, sl := range list {
		if m := sl.m.Load(); m != nil && m.Conn != except && m.Conn.Send(f, droppable) {
			n++
		}
	}
	return n
}

func (r *Room) fanout(s *snapshot, f *Frame, except Sender, droppable bool) int {
	n := 0
	for _, gv := range s.groups {
		if gv.g == nil {
			n += sendAll(gv.slots, f, except, droppable)
			continue
		}
		fo := r.newFanout(f, droppable)
		fo.slots, fo.except = gv.slots, except
		gv.g.Fanout(fo)
		n += gv.live
	}
	if except != nil && n > 0 {
		if _, ok := except.(Looped); ok {
			n-- // counted in its group
		}
	}
	return n
}
