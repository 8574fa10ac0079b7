package party

import (
	"hash/maphash"
	"slices"
	"sync"

	"partyline/dialect"
)

// Webhook events in cluster mode. Local rooms are mirrors there; a room's
// truth is its registry record, changed by revision-checked updates that
// exactly one node wins. The node whose update succeeded emits what that
// update changed, from the record before and after it: member.left for
// each seated client (party: every entry; party-v2: a connected slot)
// that is no longer seated, member.joined for each new one, room.closed
// when the record was deleted; the creating node emits room.created. So
// every event is sent once, by the node where the change happened (a
// close_room, a host grace or a DELETE: the node that deleted the record
// emits every remaining member.left and room.closed; a dead node's
// members leave through the node that reaped them).
//
// One node emits a room's events in order: a registry update of a room
// and its emission hold one of emitLocks (by room code), so a later
// update's events cannot overtake an earlier one's. Events of one room
// emitted by different nodes are ordered by their "time" only.

var emitLocks struct {
	seed maphash.Seed
	mu   [64]sync.Mutex
}

func init() { emitLocks.seed = maphash.MakeSeed() }

// emitLock returns the lock ordering code's emissions, or nil when no
// events are emitted (nothing to order).
func (d *shared) emitLock(code string) *sync.Mutex {
	if d.events == nil {
		return nil
	}
	return &emitLocks.mu[maphash.String(emitLocks.seed, code)%uint64(len(emitLocks.mu))]
}

// snapshot copies rec's members before an update changes them (nil when
// no events are emitted).
func (d *shared) snapshot(rec *roomRec) []recMember {
	if d.events == nil {
		return nil
	}
	return slices.Clone(rec.Members)
}

// seatedRec reports whether x is a seat a peer counts.
func (d *shared) seatedRec(x recMember) bool { return !d.prof.slots || !x.Off }

// emitChange emits what an update of code changed: before is the members
// snapshot, after the record's members (deleted: the record is gone).
func (d *shared) emitChange(code string, before, after []recMember, deleted bool) {
	if d.events == nil {
		return
	}
	in := func(ms []recMember, client string) bool {
		for _, x := range ms {
			if x.Client == client && d.seatedRec(x) {
				return true
			}
		}
		return false
	}
	for _, x := range before {
		if d.seatedRec(x) && (deleted || !in(after, x.Client)) {
			d.emit(dialect.MemberLeft, code, x.Client)
		}
	}
	if !deleted {
		for _, x := range after {
			if d.seatedRec(x) && !in(before, x.Client) {
				d.emit(dialect.MemberJoined, code, x.Client)
			}
		}
	}
	if deleted {
		d.emit(dialect.RoomClosed, code, "")
	}
}
