package party

import (
	"partyline/dialect"
	"partyline/routing"
)

// Webhook events (dialect.Events), in the order peers see the changes:
// member.joined where peer_joined goes out (a new seat; not a replacement
// of a connected clientId, nor a party seat reclaimed within its grace),
// member.left where peer_left does (leave, a closed socket without seat
// grace, the grace's expiry, a kick; a party-v2 slot whose socket closed),
// and for every seat still counted when the room is deleted. room.created
// precedes the room's first member.joined; room.closed follows its last
// member.left. Each is emitted under the room's lock, so a room's events
// are emitted in the order they happened.
//
// Here from the local rooms' changes when the roomStore says so
// (localEvents: a single node); the shared store emits from the registry
// changes instead (cluster_events.go), and a local room's end (OnGone) is
// then no event.

// emit sends one event, if anything listens.
func (d *Dialect) emit(t dialect.EventType, room, clientID string) {
	if d.events != nil {
		d.events.Emit(dialect.Event{Type: t, Dialect: d.prof.name, Room: room, ClientID: clientID})
	}
}

// emitLocal emits an event of a local room, if the local rooms are the
// truth (see cluster_events.go for the shared store, where local rooms are
// only mirrors).
func (d *Dialect) emitLocal(t dialect.EventType, room, clientID string) {
	if d.rooms.localEvents() {
		d.emit(t, room, clientID)
	}
}

// born emits room.created once per room, before its first member.joined.
// Under r's lock.
func (d *Dialect) born(r *routing.Room) {
	if st, ok := r.Ext().(*roomState); ok && !st.born {
		st.born = true
		d.emitLocal(dialect.RoomCreated, r.Name, "")
	}
}

// joined emits member.joined for m (and room.created before the first).
// Under r's lock.
func (d *Dialect) joined(r *routing.Room, m *routing.Member) {
	if d.events != nil && d.rooms.localEvents() {
		d.born(r)
		d.emit(dialect.MemberJoined, r.Name, m.ID)
	}
}

// seated reports whether m's seat is one peers count: every party seat
// (an away one leaves at its grace's end), a party-v2 slot only while its
// socket is connected (it left when the socket closed).
func (d *Dialect) seated(m *routing.Member) bool {
	return !d.prof.slots || m.Conn != routing.Away
}

// gone is the hub's OnGone: the room's end, after its members' departures.
// Under the room's lock.
func (d *Dialect) gone(r *routing.Room) {
	if d.onGone != nil {
		d.onGone(r)
	}
	d.emitLocal(dialect.RoomClosed, r.Name, "")
}
