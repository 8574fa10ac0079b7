package routing

import (
	"sync/atomic"
	"time"
)

// Offsets and history: a room created with Hub.CreateSequenced numbers the frames
// it publishes with a per-room sequence under an epoch (a random id of this
// incarnation of the room) and keeps its recent frames, so a member that
// lost its connection can ask for every frame addressed to it after the
// last offset it saw.
//
// A sequenced publish holds the room's lock from BeginSeq to CommitSeq:
// the frame's seq, its fan-out and its place in history are one step, so
// every member receives a room's frames in seq order, a joiner's offset
// (read under the same lock) splits what it receives live from what it
// would have to recover, and history is in seq order.

// HistoryLimits bound one room's history. A zero Size, Bytes or TTL
// disables history (offsets are still stamped).
type HistoryLimits struct {
	Size  int           // frames
	Bytes int           // encoded bytes of those frames
	TTL   time.Duration // age
}

func (l HistoryLimits) enabled() bool { return l.Size > 0 && l.Bytes > 0 && l.TTL > 0 }

// Entry is one frame in a room's history.
type Entry struct {
	Seq  uint64
	From string // the ID of the member that sent it ("": none)
	To   string // the ID of the one member it was for ("": every member but From)
	At   int64  // unix nanos when it was published
	F    *Frame
}

// For reports whether e is addressed to the member id: a frame for that
// member, or a broadcast it did not send.
func (e *Entry) For(id string) bool {
	if e.To != "" {
		return e.To == id
	}
	return e.From != id
}

// offsets is a room's sequence and history; guarded by Room.mu.
type offsets struct {
	epoch string
	seq   uint64
	lim   HistoryLimits
	ring  []Entry // capacity lim.Size; entries ring[head], ring[head+1]... (mod)
	head  int
	n     int
	bytes int
	gone  uint64 // highest seq that has left history (0: none)
	// hole is a span of seqs that were published but are lost (a crash
	// between two durable writes): an offset inside it cannot recover.
	holeLo, holeHi uint64
	held           *Gauge // bytes held across rooms (nil: not counted)
}

// Gauge is a counter shared by many rooms, read at scrape time.
type Gauge struct{ v atomic.Int64 }

// Load returns the gauge's value.
func (g *Gauge) Load() int64 { return g.v.Load() }

// setOffsets makes r a sequenced room with the given epoch, its current
// seq and history limits; held (if not nil) counts the bytes r's history
// holds. Hub.CreateSequenced calls it before the room can be found, so
// r.off never changes once others can see the room.
func (r *Room) setOffsets(epoch string, seq uint64, lim HistoryLimits, held *Gauge) {
	o := &offsets{epoch: epoch, seq: seq, lim: lim, held: held, gone: seq}
	if lim.enabled() {
		o.ring = make([]Entry, 0, min(lim.Size, 16))
	}
	r.off = o
}

// Offset returns the room's epoch and the seq of its latest frame ("" and 0
// for a room without offsets).
func (r *Room) Offset() (epoch string, seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.OffsetLocked()
}

// OffsetLocked is Offset for a caller that holds the room's lock (inside
// Join's before, or between BeginSeq and CommitSeq).
func (r *Room) OffsetLocked() (epoch string, seq uint64) {
	if r.off == nil {
		return "", 0
	}
	return r.off.epoch, r.off.seq
}

// Sequenced reports whether the room has offsets (Hub.CreateSequenced).
// Lock-free: a room's offsets are set before it can be found.
func (r *Room) Sequenced() bool { return r.off != nil }

// BeginSeq locks the room for a sequenced publish and returns the seq the
// frame will carry. The caller finishes the frame, queues it to its
// recipients (Broadcast, or a member found with LookupLocked), calls
// CommitSeq if it published, then EndSeq. Nothing between may block: the
// room's joins, leaves and publishes wait.
func (r *Room) BeginSeq() uint64 {
	r.mu.Lock()
	return r.off.seq + 1
}

// EndSeq unlocks the room after BeginSeq.
func (r *Room) EndSeq() { r.mu.Unlock() }

// CommitSeq files f (published as the seq BeginSeq returned, from and to as
// in Entry) in the room's history, taking a reference, and evicts what the
// limits no longer allow; the room stays locked. It returns the highest
// seq that has left history (what a durable copy may drop). A room that
// has died (CloseIf while a member was publishing) keeps nothing.
func (r *Room) CommitSeq(f *Frame, from, to string) (gone uint64) {
	o := r.off
	o.seq++
	if o.ring != nil && !r.dead {
		now := time.Now().UnixNano()
		f.Retain()
		o.push(Entry{Seq: o.seq, From: from, To: to, At: now, F: f})
		o.evict(now)
	} else {
		o.gone = o.seq
	}
	return o.gone
}

// BeginAt locks the room for a frame numbered seq by an external
// sequencer (a cluster's stream, whose seqs have gaps): true when seq is
// after the room's, and the caller then fans the frame out, calls
// CommitAt and EndSeq; false (the room unlocked) for a seq already seen.
func (r *Room) BeginAt(seq uint64) bool {
	r.mu.Lock()
	if r.dead || r.off == nil || seq <= r.off.seq {
		r.mu.Unlock()
		return false
	}
	return true
}

// CommitAt is CommitSeq for BeginAt's seq, published at at (unix nanos).
// A nil f only moves the room's offset (an entry nobody receives). The
// first seq a room numbers this way marks everything before it as gone:
// a follower that starts at the oldest entry its sequencer kept cannot
// know what came before.
func (r *Room) CommitAt(f *Frame, seq uint64, from, to string, at int64) (gone uint64) {
	o := r.off
	if o.seq == 0 && o.n == 0 {
		o.gone = seq - 1
	}
	o.seq = seq
	switch {
	case f == nil:
	case o.ring != nil:
		f.Retain()
		o.push(Entry{Seq: seq, From: from, To: to, At: at, F: f})
		o.evict(time.Now().UnixNano())
	default:
		o.gone = seq
	}
	return o.gone
}

// LookupLocked is Lookup for a caller that holds the room's lock.
func (r *Room) LookupLocked(id []byte) *Member {
	if sl := r.byID[string(id)]; sl != nil {
		return sl.m.Load()
	}
	return nil
}

// LookupLockedID is LookupLocked for an ID held in a string.
func (r *Room) LookupLockedID(id string) *Member {
	if sl := r.byID[id]; sl != nil {
		return sl.m.Load()
	}
	return nil
}

// Replay reports whether every frame addressed to member id after seq
// since is still in history, and if so calls fn (unless nil) with each of
// them in order. The caller holds the room's lock (inside Join's before), so the
// frames reach the member ahead of any later publish.
func (r *Room) Replay(id string, since uint64, fn func(*Entry)) bool {
	o := r.off
	if o == nil || since > o.seq {
		return false
	}
	if o.ring != nil {
		o.evict(time.Now().UnixNano())
	}
	if since > o.holeLo && since < o.holeHi {
		return false
	}
	if o.gone > since {
		// Something after since has left: recoverable only if none of it
		// was for this member, which history no longer knows.
		return false
	}
	for i := 0; fn != nil && i < o.n; i++ {
		if e := o.at(i); e.Seq > since && e.For(id) {
			fn(e)
		}
	}
	return true
}

// History calls fn with every entry in history, oldest first (for a
// durable copy). The caller holds no lock; Entries are only valid during
// fn.
func (r *Room) History(fn func(*Entry)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off == nil {
		return
	}
	for i := range r.off.n {
		fn(r.off.at(i))
	}
}

// Restore puts back the entries of a history loaded from a durable copy,
// in seq order, before the room has members. It takes over the callers'
// references to the frames (and releases those it does not keep).
func (r *Room) Restore(es []Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.off
	for _, e := range es {
		if o == nil || o.ring == nil || (o.n > 0 && e.Seq <= o.gone) {
			e.F.Release()
			continue
		}
		if e.Seq > o.seq {
			o.seq = e.Seq
		}
		o.push(e)
		if o.n == 1 {
			o.gone = e.Seq - 1
		}
	}
}

// SkipLost marks the seqs after the restored history, up to its seq plus
// n, as published but lost (a crash between two durable writes may have
// lost up to that many), and continues numbering after them: a client that
// saw one of the lost frames cannot recover, one that saw less recovers
// what was kept, and no seq is ever used twice in an epoch.
func (r *Room) SkipLost(n uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o := r.off; o != nil {
		o.holeLo, o.holeHi = o.seq, o.seq+n+1
		o.seq += n
	}
}

// ExpireHistory drops entries older than the TTL and reports the highest
// seq that has left history. A sweeper calls it for idle rooms, whose
// history would otherwise wait for the next publish.
func (r *Room) ExpireHistory(now time.Time) (gone uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.off == nil {
		return 0
	}
	if r.off.ring != nil {
		r.off.evict(now.UnixNano())
	}
	return r.off.gone
}

// dropHistory releases every frame of a room that has died. Locked.
func (r *Room) dropHistoryLocked() {
	o := r.off
	if o == nil {
		return
	}
	for o.n > 0 {
		o.pop()
	}
}

func (o *offsets) at(i int) *Entry {
	return &o.ring[(o.head+i)%cap(o.ring)]
}

func (o *offsets) push(e Entry) {
	e.F = e.F.compact()
	if o.n == cap(o.ring) {
		if o.n >= o.lim.Size {
			o.pop()
		} else { // grow up to lim.Size
			next := make([]Entry, o.n, min(o.lim.Size, 2*cap(o.ring)))
			for i := range o.n {
				next[i] = *o.at(i)
			}
			o.ring, o.head = next, 0
		}
	}
	idx := (o.head + o.n) % cap(o.ring)
	if idx < len(o.ring) {
		o.ring[idx] = e
	} else {
		o.ring = append(o.ring, e)
	}
	o.n++
	o.bytes += e.F.Len()
	if o.held != nil {
		o.held.v.Add(int64(e.F.Len()))
	}
}

// pop drops the oldest entry.
func (o *offsets) pop() {
	e := o.at(0)
	o.gone = e.Seq
	o.bytes -= e.F.Len()
	if o.held != nil {
		o.held.v.Add(-int64(e.F.Len()))
	}
	e.F.Release()
	*e = Entry{}
	o.head = (o.head + 1) % cap(o.ring)
	o.n--
}

func (o *offsets) evict(now int64) {
	old := now - int64(o.lim.TTL)
	for o.n > 0 && (o.n > o.lim.Size || o.bytes > o.lim.Bytes || o.at(0).At < old) {
		o.pop()
	}
}
