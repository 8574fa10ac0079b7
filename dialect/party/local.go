package party

import "partyline/routing"

// local is the roomStore of a single node (New): a room is a routing.Room
// of the dialect's hub and nothing else. Seats are kept away in it
// (seats.go), history and retained state in it and its roomState, and
// with a PersistDir the rooms survive a restart (persist.go); the rooms
// API lists, creates and changes them directly (api.go), GET /room reads
// them on the loop (plain.go), and webhooks come from their changes
// (events.go). Its session operations sit beside the protocol code they
// serve (party.go, v2.go); every one runs to its end on the session's
// loop, so the session's gate is never closed by the store.
type local struct{ *Dialect }

// abort: nothing is ever in flight.
func (local) abort(*session) {}

// keepSeat keeps the seat of a closing member: as the persisted store has
// it while the server drains, or away for Config.SeatGrace.
func (local) keepSeat(s *session) bool {
	switch {
	case s.d.draining.Load() && s.d.persist != nil:
		s.room, s.me = nil, nil // the seat stays as the store has it
		return true
	case s.d.cfg.SeatGrace > 0:
		s.goAway()
		return true
	}
	return false
}

// leave drops m's seat.
func (local) leave(s *session, r *routing.Room, m *routing.Member) { s.d.dropSeat(r, m) }

// listable: a local room has the listing fields.
func (local) listable() bool { return true }

// localEvents: the local rooms are the truth.
func (local) localEvents() bool { return true }
