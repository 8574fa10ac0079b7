package routing

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

const shardCount = 64

type shard struct {
	rooms   sync.Map     // name -> *Room
	count   atomic.Int64 // rooms
	members atomic.Int64 // members across this shard's rooms
}

// Hub is a namespace of rooms in a fixed set of shards chosen by hash.
// Each dialect owns its own Hub, so names never collide across dialects.
type Hub struct {
	seed   maphash.Seed
	shards [shardCount]shard
	ns     string  // namespace for a cross-node broker (see Watch)
	watch  Watcher // nil: nobody watches (single node)
	gone   func(*Room)
	fanMin atomic.Int64 // 0: DefaultFanoutMin
}

// FanoutMin is the room size from which a broadcast is handed to the
// members' loops (see Fanout): the hub's own setting, else the process's
// (SetFanoutMin), else DefaultFanoutMin.
func (h *Hub) FanoutMin() int {
	if n := h.fanMin.Load(); n > 0 {
		return int(n)
	}
	if n := fanMin.Load(); n > 0 {
		return int(n)
	}
	return DefaultFanoutMin
}

// SetFanoutMin sets the hub's FanoutMin (n <= 0: the process's). Any time.
func (h *Hub) SetFanoutMin(n int) { h.fanMin.Store(int64(max(n, 0))) }

var fanMin atomic.Int64

// SetFanoutMin sets FanoutMin for every hub without its own (n <= 0:
// DefaultFanoutMin). Any time; the server's --fanout-min.
func SetFanoutMin(n int) { fanMin.Store(int64(max(n, 0))) }

// OnGone installs fn, which runs when a room loses its last member, under
// the room's lock and before the room leaves the hub (so before a new room
// of the same name can exist): a durable copy deletes the room there. It
// must only record the change, never block. Call it before the hub has
// rooms.
func (h *Hub) OnGone(fn func(*Room)) { h.gone = fn }

// Watcher learns when a room of a Hub gains its first member and when it
// loses its last (the room is then deleted): a cluster broker subscribes
// to the room's cross-node traffic for exactly that span. Both methods run
// under the room's lock, on whichever goroutine changed the membership (an
// event loop, usually): they must only record the change, never block.
// For one room, RoomActive and RoomIdle alternate, RoomActive first.
type Watcher interface {
	RoomActive(r *Room)
	RoomIdle(r *Room)
}

// Watch names the hub's namespace (unique per node, the same on every
// node) and installs w. Call it before the hub has rooms.
func (h *Hub) Watch(ns string, w Watcher) { h.ns, h.watch = ns, w }

// NS is the namespace given to Watch ("" if none).
func (h *Hub) NS() string { return h.ns }

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{seed: maphash.MakeSeed()} }

func (h *Hub) shardFor(name string) *shard {
	return &h.shards[maphash.String(h.seed, name)%shardCount]
}

// Get returns the room called name, or nil. Lock-free.
func (h *Hub) Get(name string) *Room {
	if v, ok := h.shardFor(name).rooms.Load(name); ok {
		return v.(*Room)
	}
	return nil
}

// Create makes a new room called name with capacity max (0: unlimited).
// It returns nil if the name is taken.
func (h *Hub) Create(name string, max int) *Room {
	sh := h.shardFor(name)
	r := newRoom(h, sh, name, max)
	if _, loaded := sh.rooms.LoadOrStore(name, r); loaded {
		return nil
	}
	sh.count.Add(1)
	return r
}

// CreateSequenced is Create for a room with offsets and history (see
// SetOffsets), set before the room can be found: created is its creation
// time (zero: now).
func (h *Hub) CreateSequenced(name string, max int, created time.Time, epoch string, seq uint64, lim HistoryLimits, held *Gauge) *Room {
	sh := h.shardFor(name)
	r := newRoom(h, sh, name, max)
	if !created.IsZero() {
		r.Created = created
	}
	r.setOffsets(epoch, seq, lim, held)
	if _, loaded := sh.rooms.LoadOrStore(name, r); loaded {
		return nil
	}
	sh.count.Add(1)
	return r
}

// GetOrCreate returns the room called name, creating it (unlimited) if
// needed. A room found dead (its last member just left) is replaced.
func (h *Hub) GetOrCreate(name string) *Room {
	for {
		if r := h.Get(name); r != nil {
			return r
		}
		if r := h.Create(name, 0); r != nil {
			return r
		}
	}
}

// JoinOrCreate joins m to the room called name, creating the room when
// needed, and retries when it races with the room's deletion. before is
// Join's, told which room it runs for.
func (h *Hub) JoinOrCreate(name string, m *Member, replace func(*Member) error, before func(*Room, []*Member)) (*Room, *Member, error) {
	for {
		r := h.GetOrCreate(name)
		var hook func([]*Member)
		if before != nil {
			hook = func(members []*Member) { before(r, members) }
		}
		old, err := r.Join(m, replace, hook)
		if err == ErrRoomGone {
			continue
		}
		return r, old, err
	}
}

// Remove takes a room that never had members out of the hub.
func (h *Hub) Remove(r *Room) { h.remove(r) }

func (h *Hub) remove(r *Room) {
	if r.shard.rooms.CompareAndDelete(r.Name, r) {
		r.shard.count.Add(-1)
	}
}

// Rooms is the number of rooms (kept up to date, not recounted).
func (h *Hub) Rooms() int64 {
	var n int64
	for i := range h.shards {
		n += h.shards[i].count.Load()
	}
	return n
}

// Members is the number of memberships across all rooms.
func (h *Hub) Members() int64 {
	var n int64
	for i := range h.shards {
		n += h.shards[i].members.Load()
	}
	return n
}

// Range calls fn for every room until it returns false. Rooms created or
// deleted during the walk may or may not be seen.
func (h *Hub) Range(fn func(*Room) bool) {
	for i := range h.shards {
		cont := true
		h.shards[i].rooms.Range(func(_, v any) bool {
			cont = fn(v.(*Room))
			return cont
		})
		if !cont {
			return
		}
	}
}
