package party

import (
	"sync/atomic"
	"time"
)

// Room limits: --max-rooms bounds the rooms of the node (create is
// refused past it), --room-creates-per-minute the rooms one connection may
// create, and --max-state-bytes-total the retained state of every room
// together (set_state is refused past it). A refusal is an error reply to
// that message and nothing else: the connection, its room and every other
// room are unaffected.

// stateEnvelope bounds the bytes a state frame adds to its state JSON:
// {"type":"state","state":...,"seq":N}.
const stateEnvelope = len(`{"type":"state","state":,"seq":18446744073709551615}`)

// stateBudget counts the retained state bytes of every room, like the
// server's outbound budget: one atomic, each room's share in its
// roomState.counted (guarded by roomState.mu), so that the count is the
// sum of the shares whatever the order of concurrent set_states. Safe
// from any goroutine.
type stateBudget struct {
	max  int64 // 0: no limit
	used atomic.Int64
}

// resize makes st's share n bytes, unless that would take the total over
// the budget; a share that shrinks always fits. The caller holds st.mu.
func (b *stateBudget) resize(st *roomState, n int64) bool {
	delta := n - st.counted
	for delta > 0 && b.max > 0 {
		u := b.used.Load()
		if u+delta > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+delta) {
			st.counted, st.budget = n, b
			return true
		}
	}
	b.force(st, n)
	return true
}

// force makes st's share n bytes whatever the total. The caller holds
// st.mu, or is alone with st.
func (b *stateBudget) force(st *roomState, n int64) {
	b.used.Add(n - st.counted)
	st.counted, st.budget = n, b
}

// StateBytes is the retained state bytes of every room (a /metrics gauge).
func (d *Dialect) StateBytes() int64 { return d.states.used.Load() }

// mayCreate reports why the session may not create a room now, or "".
// Loop only.
func (s *session) mayCreate() string {
	if max := s.d.cfg.MaxRooms; max > 0 && s.d.hub.Rooms() >= int64(max) {
		return "too many rooms on this server: try again later"
	}
	if !s.creates.take(s.d.cfg.RoomCreatesPerMinute, time.Now().UnixNano()) {
		return "too many rooms created: at most " + itoa(s.d.cfg.RoomCreatesPerMinute) + " a minute per connection"
	}
	return ""
}
