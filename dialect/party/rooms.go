package party

import (
	"partyline/dialect"
	"partyline/routing"
)

// roomStore is where the dialect's rooms live, chosen once when it is
// wired: local (New: this node's hub, with seats, persistence, history
// and the rooms' listing; local.go) or shared (UseCluster: the cluster's
// registry records and room logs on backplane.Cluster, the hub holding
// only this node's members; cluster.go, cluster_log.go, v2cluster.go,
// api_cluster.go). The sessions and the rooms API speak the protocol and
// check the requests; the store does what the request asks of the rooms.
// What the two cannot both do is a method too (listable, localEvents,
// roomWork, apiCreate), never a test of the mode.
//
// Session methods run on the session's event loop (s is the session); a
// store that blocks hands the work to its worker pool and finishes on the
// loop through Conn.Do, holding the session's later messages in its gate
// meanwhile. The api* methods and roomWork's function run on net/http or
// worker goroutines.
type roomStore interface {
	// party 1.x: create (max is the capacity, listing checked by
	// listable) and join of the room code by clientId id; a token and
	// since as the join carried them.
	create(s *session, id string, max int, listing listingReq)
	join(s *session, id, code, token string, hasToken bool, since *sinceReq)
	// send and setState act on the session's room r; setState's
	// state (raw JSON) has its budget reserved in st.
	send(s *session, r *routing.Room, req *request)
	setState(s *session, r *routing.Room, st *roomState, state []byte)
	// leave removes m (the session's member, no longer the session's)
	// from r for good, with peer_left.
	leave(s *session, r *routing.Room, m *routing.Member)
	// keepSeat keeps the closing session's seat (away) instead of
	// leaving, if the store does so now; false: the session leaves.
	keepSeat(s *session) bool

	// party-v2: create with the slot room sr (the controller URL
	// template tmpl unresolved), join, send, set_state, close_room, and
	// off: a closing member's slot goes away.
	createV2(s *session, id string, sr *slotRoom, tmpl string, listing listingReq)
	joinV2(s *session, id, code string)
	sendV2(s *session, r *routing.Room, req *request)
	setStateV2(s *session, r *routing.Room, data []byte)
	closeRoom(s *session, r *routing.Room)
	off(s *session, r *routing.Room, m *routing.Member)

	// abort runs first in OnClose: an operation in flight is undone.
	abort(s *session)

	// listable: rooms may have the listing fields (public, metadata).
	listable() bool
	// localEvents: webhook events come from the local rooms' changes
	// (events.go); false: from the store's own (cluster_events.go).
	localEvents() bool
	// start is the dialect's Start.
	start() error

	// The rooms API (api.go); code is as the request wrote it.
	apiList(f dialect.RoomFilter, after string, limit int) ([]dialect.RoomSummary, bool, error)
	apiCreate(spec dialect.RoomSpec) (dialect.RoomSummary, error)
	apiDetail(code string) (dialect.RoomDetail, error)
	apiSend(code string, data []byte, to string) (int, error)
	apiKick(code, clientID, reason string) error
	apiClose(code string) (int, error)

	// GET /room/<seg> (plain.go): roomAnswer on the loop, or, when
	// roomWork returns a function, that function off the loop.
	roomAnswer(seg string) []byte
	roomWork(seg string) func() []byte
}
