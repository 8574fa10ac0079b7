package party

import (
	"math"
	mrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"partyline/codec"
	"partyline/dialect"
	"partyline/routing"
)

// Party-Sockets 2.x, the party-v2 dialect (docs/protocols.md "party-v2"). It is
// the party dialect's machinery — one Hub of routing.Rooms, the same
// session, request decoding, members, pre-encoded frames and broker — with
// the differences held as data in a profile:
//
//   - identity: a member's quotedID is its slot index ("3") instead of its
//     clientId as a JSON string, so "message", "peer_joined" and
//     "peer_left" are built by the same code with other field names;
//   - slots: a member whose socket closes keeps its seat as an away member
//     (routing.Away, as party's kept seats) for the room's whole life, and
//     only connected members count toward maxClients (Room.JoinAdmit);
//   - the host (slot 0) alone may set_state and close_room; a hostless
//     room is closed after Config.HostGrace (Room.CloseIf);
//   - codes, error texts and the created/joined fields.
//
// A party-v2 room has no offsets or history (2.x has no recovery) and is
// not persisted. In a cluster (the shared store) it uses party's cluster
// machinery with the slots in the registry record (v2cluster.go).

// profile is what tells the party dialects apart.
type profile struct {
	name           string
	slots          bool   // Party-Sockets 2.x: slot indices, host role, controller URL
	targetNotFound string // send to an unknown "to"
	peerJoined     string // frame prefixes, followed by the member's quotedID and '}'
	peerLeft       string

	// cluster mode: registry key prefix, room-log stream and subject prefix
	key, stream, logPrefix string
}

var (
	v1Profile = &profile{name: "party", targetNotFound: errTargetNotFound,
		peerJoined: `{"type":"peer_joined","clientId":`, peerLeft: `{"type":"peer_left","clientId":`,
		key: "room.", stream: "PL_PARTY", logPrefix: "pl.ph"}
	v2Profile = &profile{name: "party-v2", slots: true, targetNotFound: "Target peer not found",
		peerJoined: `{"type":"peer_joined","index":`, peerLeft: `{"type":"peer_left","index":`,
		key: "room2.", stream: "PL_PARTY_V2", logPrefix: "pl.p2"}
)

// Party-Sockets 2.x's own error texts (the shared ones are in party.go).
const (
	errDraining      = "Server draining"
	errHostState     = "Only the host can set state"
	errStateRequired = "State data is required"
	errStateTooLarge = "State too large"
	errHostClose     = "Only the host can close the room"
)

const (
	// Base58 is the party-v2 room-code alphabet (Bitcoin's).
	Base58     = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	v2CodeLen  = 6
	v2MaxState = 16384 // bytes of the state as JavaScript's JSON.stringify writes it
	maxSafeInt = 1<<53 - 1
)

// NewV2 returns the party-v2 dialect: party's machinery with the 2.x
// profile, in its own Hub. Persistence, history, kept seats and the
// room-scan defence are party's extensions and stay off.
func NewV2(cfg Config) *Dialect {
	cfg.Persist, cfg.PersistDir = false, ""
	cfg.SeatGrace, cfg.StrictReconnect = 0, false
	cfg.HistorySize, cfg.HistoryBytes, cfg.HistoryTTL = 0, 0, 0
	cfg.JoinFailuresPerMinute, cfg.JoinFailuresPerMinutePerIP = 0, 0
	d := New(cfg)
	d.prof = v2Profile
	return d
}

// slotRoom is the party-v2 part of a room's state.
type slotRoom struct {
	max     float64 // maxClients: a join needs fewer connected members
	maxText string  // maxClients as GET /room echoes it
	url     string  // the resolved controller URL
	hasURL  bool

	// Under the room's lock:
	slots    int         // slots ever created: the index of the next new clientId
	graceGen uint64      // bumped by every host drop and host return
	grace    *time.Timer // the pending host-grace teardown, or nil
}

// connected counts the members with a socket (not away).
func connected(members []*routing.Member) int {
	n := 0
	for _, m := range members {
		if m.Conn != routing.Away {
			n++
		}
	}
	return n
}

// slotMember is the member of slot index for clientId id.
func slotMember(id string, index int, c routing.Sender) *routing.Member {
	return &routing.Member{ID: strings.Clone(id), Conn: c,
		Data: &member{index: index, quotedID: strconv.AppendInt(nil, int64(index), 10)}}
}

// base58Code draws a room code as 2.x does: a uniformly random integer
// below 2^35, big-endian base58, left-padded with '1' (the zero digit).
func base58Code() string {
	n := mrand.Int64N(1 << 35)
	var b [v2CodeLen]byte
	for i := v2CodeLen - 1; i >= 0; i-- {
		b[i] = Base58[n%58]
		n /= 58
	}
	return string(b[:])
}

// jsNumber writes v as JavaScript prints a number (GET /room echoes
// maxClients so).
func jsNumber(v float64) string {
	if math.Abs(v) < 1e21 {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	return strconv.FormatFloat(v, 'e', -1, 64)
}

func (s *session) createV2(req *request) {
	if s.d.draining.Load() {
		s.fail(errDraining)
		return
	}
	id, ok := s.entering(req)
	if !ok {
		return
	}
	max, ok := jsonNumber(req.MaxClients)
	if !ok || max < 1 {
		s.fail(errMaxClients)
		return
	}
	sr := &slotRoom{max: max, maxText: jsNumber(max), slots: 1}
	var tmpl string
	if sr.hasURL = len(req.URL) > 0; sr.hasURL {
		var e string
		if tmpl, e = checkURL(req.URL); e != "" {
			s.fail(e)
			return
		}
	}
	listing, ok := s.listing(req)
	if !ok {
		return
	}
	if s.mustAuthorize() {
		s.authorize("create", id, "")
		return
	}
	s.d.rooms.createV2(s, id, sr, tmpl, listing)
}

// createV2 makes the party-v2 room on this node with the session in
// slot 0.
func (local) createV2(s *session, id string, sr *slotRoom, tmpl string, listing listingReq) {
	var r *routing.Room
	for i := 0; i < 10 && r == nil; i++ {
		r = s.d.hub.Create(base58Code(), 0)
	}
	if r == nil {
		s.fail("no free room code: try again")
		return
	}
	if sr.hasURL {
		sr.url = resolveURL(tmpl, r.Name, s.d.cfg.InstanceID)
	}
	r.SetExt(&roomState{slot: sr, origin: originOf(s.c), public: listing.public, meta: listing.meta})
	s.d.origins.roomCreated(originOf(s.c))
	m := slotMember(id, 0, s.c)
	m.Data.(*member).meta = s.grant
	if _, err := r.Join(m, nil, func([]*routing.Member) {
		s.sendCreatedV2(r, sr.url, sr.hasURL)
		s.d.joined(r, m)
	}); err != nil {
		s.fail(errRoomNotFound)
		return
	}
	s.room, s.me = r, m
}

// sendCreatedV2 queues party-v2's "created" (the creator is slot 0).
func (s *session) sendCreatedV2(r *routing.Room, url string, hasURL bool) {
	f := routing.NewText()
	f.AppendStr(`{"type":"created","room":`)
	f.SetBuf(codec.AppendString(f.Buf(), r.Name))
	s.d.appendPlace(f)
	f.AppendStr(`,"index":0`)
	appendURL(f, url, hasURL)
	f.Append('}')
	s.c.Send(f.End(), false)
	f.Release()
}

// appendPlace writes `,"instance":I,"region":R`.
func (d *Dialect) appendPlace(f *routing.Frame) {
	f.AppendStr(`,"instance":`)
	f.SetBuf(codec.AppendString(f.Buf(), d.cfg.InstanceID))
	f.AppendStr(`,"region":`)
	f.SetBuf(codec.AppendString(f.Buf(), d.cfg.Region))
}

func appendURL(f *routing.Frame, url string, hasURL bool) {
	if hasURL {
		f.AppendStr(`,"url":`)
		f.SetBuf(codec.AppendString(f.Buf(), url))
	}
}

func (s *session) joinV2(req *request) {
	id, code, ok := s.joining(req)
	if !ok {
		return
	}
	if s.mustAuthorize() {
		s.authorize("join", id, code)
		return
	}
	s.d.rooms.joinV2(s, id, code)
}

// joinV2 adds the session to the party-v2 room on this node: its
// clientId's slot if it has one, else the next.
func (local) joinV2(s *session, id, code string) {
	r := s.d.hub.Get(code)
	var st *roomState
	if r != nil {
		st, _ = r.Ext().(*roomState)
	}
	if st == nil || st.slot == nil {
		s.fail(errRoomNotFound)
		return
	}
	sr := st.slot
	m := &routing.Member{ID: strings.Clone(id), Conn: s.c}
	pm := &member{meta: s.grant}
	m.Data = pm
	replacing := false
	old, err := r.JoinAdmit(m, func(old *routing.Member, members []*routing.Member) error {
		if old != nil && old.Conn != routing.Away { // replacement: no cap check
			replacing = true
			pm.setIndex(old.Data.(*member).index)
			return nil
		}
		if float64(connected(members)) >= sr.max {
			return routing.ErrRoomFull
		}
		if old != nil { // reclaim
			pm.setIndex(old.Data.(*member).index)
		} else {
			pm.setIndex(sr.slots)
			sr.slots++
		}
		return nil
	}, func(members []*routing.Member) {
		s.sendJoinedV2(r, st, m, members)
		if !replacing {
			s.d.announceJoin(r, s.d.prof.peerJoined, m, s.c)
			s.d.joined(r, m)
			if pm.index == 0 {
				sr.cancelGrace()
			}
		}
	})
	switch err {
	case nil:
	case routing.ErrRoomFull:
		s.fail(errRoomFull)
		return
	default:
		s.fail(errRoomNotFound)
		return
	}
	s.room, s.me = r, m
	if old != nil {
		old.Data.(*member).replaced.Store(true)
		if oc, ok := old.Conn.(dialect.Conn); ok {
			oc.Close(4000, "replaced")
		}
	}
}

func (pm *member) setIndex(i int) {
	pm.index = i
	pm.quotedID = strconv.AppendInt(nil, int64(i), 10)
}

// sendJoinedV2 queues "joined" and the retained state to the joiner, under
// the room's lock, before the joiner is visible to fan-out.
func (s *session) sendJoinedV2(r *routing.Room, st *roomState, m *routing.Member, members []*routing.Member) {
	var buf [16]int
	peers := buf[:0]
	var metas []slotMeta
	for _, x := range members {
		if x.Conn == routing.Away {
			continue
		}
		pm := x.Data.(*member)
		if x != m {
			peers = append(peers, pm.index)
		}
		if pm.meta != nil {
			metas = append(metas, slotMeta{pm.index, pm.meta})
		}
	}
	s.sendJoinedSlots(r, m, peers, metas, st.slot.url, st.slot.hasURL)
}

// slotMeta is a connected slot's join-hook metadata.
type slotMeta struct {
	index int
	meta  []byte
}

// sendJoinedSlots queues "joined" with the connected peers' indices (in
// any order), the connected slots' metadata and the room's retained
// state. Under the room's lock.
func (s *session) sendJoinedSlots(r *routing.Room, m *routing.Member, peers []int, metas []slotMeta, url string, hasURL bool) {
	slices.Sort(peers)
	f := routing.NewText()
	f.AppendStr(`{"type":"joined","room":`)
	f.SetBuf(codec.AppendString(f.Buf(), r.Name))
	f.AppendStr(`,"index":`)
	f.Append(m.Data.(*member).quotedID...)
	f.AppendStr(`,"peers":[`)
	for i, p := range peers {
		if i > 0 {
			f.Append(',')
		}
		f.SetBuf(codec.AppendInt(f.Buf(), int64(p)))
	}
	f.Append(']')
	appendURL(f, url, hasURL)
	var key [20]byte
	for i, x := range metas {
		appendMetaEntry(f, i, strconv.AppendInt(key[:0], int64(x.index), 10), x.meta)
	}
	if len(metas) > 0 {
		f.Append('}')
	}
	f.Append('}')
	s.c.Send(f.End(), false)
	f.Release()
	st, _ := r.Ext().(*roomState)
	st.mu.Lock()
	if st.state != nil {
		s.c.Send(st.state, false)
	}
	st.mu.Unlock()
}

// slotIndex reads a send's "to": a non-negative safe integer (1.0 counts).
func slotIndex(raw []byte) (int, bool) {
	n := 0
	for i, c := range raw {
		if c < '0' || c > '9' || i > 15 {
			return slotIndexSlow(raw)
		}
		n = n*10 + int(c-'0')
	}
	return n, len(raw) > 0 && n <= maxSafeInt
}

func slotIndexSlow(raw []byte) (int, bool) {
	v, ok := jsonNumber(raw)
	if !ok || v < 0 || v > maxSafeInt || v != math.Trunc(v) {
		return 0, false
	}
	return int(v), true
}

// sendV2 relays the member's message to every other connected slot of
// r, or to one.
func (local) sendV2(s *session, r *routing.Room, req *request) {
	var target *routing.Member
	if len(req.To) > 0 {
		if idx, ok := slotIndex(req.To); ok {
			for _, x := range r.Members() {
				if x.Conn != routing.Away && x.Data.(*member).index == idx {
					target = x
					break
				}
			}
		}
		if target == nil {
			s.fail(s.d.prof.targetNotFound)
			return
		}
	}
	f := s.messageFrame(req.Data)
	f.Append('}')
	s.deliver(r, f.End(), target)
	f.Release()
}

// deliver queues f to target, or to every other member when target is nil.
func (s *session) deliver(r *routing.Room, f *routing.Frame, target *routing.Member) {
	if target != nil {
		r.SendTo(target, f, false) // behind the room's earlier frames
	} else {
		s.d.broker.Publish(r, f, s.c, false)
	}
}

// host returns the session's room if its member is the host, else it
// answers the error (notHost for a guest) and returns nil.
func (s *session) host(notHost string) *routing.Room {
	r := s.current()
	switch {
	case r == nil:
		s.fail(errNotInRoom)
	case s.me.Data.(*member).index != 0:
		s.fail(notHost)
	default:
		return r
	}
	return nil
}

func (s *session) setStateV2(req *request) {
	r := s.host(errHostState)
	if r == nil {
		return
	}
	if len(req.Data) == 0 {
		s.fail(errStateRequired)
		return
	}
	if jsJSONSize(req.Data) > v2MaxState {
		s.fail(errStateTooLarge)
		return
	}
	s.d.rooms.setStateV2(s, r, req.Data)
}

// setStateV2 makes data the room's retained state and pushes it to the
// others.
func (local) setStateV2(s *session, r *routing.Room, data []byte) {
	st, _ := r.Ext().(*roomState)
	f := routing.NewText()
	f.AppendStr(`{"type":"state","data":`)
	f.Append(data...)
	f.Append('}')
	f.End()
	// Under the room's lock: a joiner gets either this state after its
	// "joined" or the push, never neither.
	r.Locked(func([]*routing.Member) {
		if s.d.hub.Get(r.Name) != r { // closed through the API since host(): dropState has run
			f.Release()
			return
		}
		st.mu.Lock()
		old := st.state
		st.state = f // the room keeps the caller's reference
		st.mu.Unlock()
		s.d.broker.Publish(r, f, s.c, false)
		if old != nil {
			old.Release()
		}
	})
}

func (s *session) closeRoom() {
	if r := s.host(errHostClose); r != nil {
		s.d.rooms.closeRoom(s, r)
	}
}

// closeRoom ends r: its members are closed with 4001.
func (local) closeRoom(s *session, r *routing.Room) {
	s.d.teardown(r, nil, CloseRoomEnded)
}

// Close codes of a room's end: the host's close_room and the host grace
// (Party-Sockets 2.x), and the rooms API's DELETE.
const (
	CloseRoomEnded = 4001
	CloseClosed    = 4004
)

// teardown deletes r, if cond (nil: always) holds under its lock, and
// closes every connected member with code and "room closed"; it returns
// how many it closed and whether it deleted r. The members' sessions act
// for them no more (their seats went with the room). Any goroutine.
func (d *Dialect) teardown(r *routing.Room, cond func(members []*routing.Member) bool, code uint16) (int, bool) {
	st, _ := r.Ext().(*roomState)
	members, ok := r.CloseIf(func(members []*routing.Member) bool {
		if cond != nil && !cond(members) {
			return false
		}
		if st != nil && st.slot != nil {
			st.slot.cancelGrace()
		}
		for _, m := range members { // their departures, before the room's end (gone)
			if d.seated(m) {
				d.emitLocal(dialect.MemberLeft, r.Name, m.ID)
			}
		}
		return true
	})
	if !ok {
		return 0, false
	}
	dropState(r)
	n := 0
	for _, m := range members {
		m.Data.(*member).replaced.Store(true)
		if c, ok := m.Conn.(dialect.Conn); ok {
			c.Close(code, "room closed")
			n++
		}
	}
	return n, true
}

// cancelGrace stops a pending host-grace teardown. Under the room's lock.
func (sr *slotRoom) cancelGrace() {
	sr.graceGen++
	if sr.grace != nil {
		sr.grace.Stop()
		sr.grace = nil
	}
}

// armGrace (re)starts the host-grace teardown of r. Under its lock.
func (d *Dialect) armGrace(r *routing.Room, sr *slotRoom) {
	sr.cancelGrace()
	gen := sr.graceGen
	sr.grace = time.AfterFunc(d.cfg.HostGrace, func() {
		d.teardown(r, func(members []*routing.Member) bool {
			if sr.graceGen != gen {
				return false // the host came back, or dropped again later
			}
			for _, m := range members {
				if m.Conn != routing.Away && m.Data.(*member).index == 0 {
					return false
				}
			}
			return true
		}, CloseRoomEnded)
	})
}

// closeV2 ends a party-v2 member's connection: its slot stays, away, for
// the room's life; the room ends with its last connected member. Loop only.
func (s *session) closeV2() {
	r, m := s.room, s.me
	s.room, s.me = nil, nil
	if r == nil || m.Data.(*member).replaced.Load() {
		return // no slot, or a newer socket has it
	}
	s.d.rooms.off(s, r, m)
}

// off turns m's slot into an away one; peer_left to the room, and the
// host's grace starts; the room ends with its last connected member.
func (local) off(s *session, r *routing.Room, m *routing.Member) {
	pm := m.Data.(*member)
	away := &routing.Member{ID: m.ID, Conn: routing.Away, Data: &member{index: pm.index, quotedID: pm.quotedID, away: true, meta: pm.meta}}
	st, _ := r.Ext().(*roomState)
	empty := false
	if !r.Swap(m, away, func(members []*routing.Member) {
		s.d.emitLocal(dialect.MemberLeft, r.Name, m.ID) // peer_left, or the room ends with it
		if connected(members) == 0 {
			empty = true
			return
		}
		s.d.announce(r, s.d.prof.peerLeft, away, nil)
		if pm.index == 0 {
			s.d.armGrace(r, st.slot)
		}
	}) {
		return // the room was closed
	}
	if empty {
		s.d.teardown(r, func(members []*routing.Member) bool { return connected(members) == 0 }, CloseRoomEnded)
	}
}

// Lingers keeps a party-v2 member's socket open while the server drains,
// as long as its room lives (2.x keeps serving rooms until they end).
func (s *session) Lingers() bool {
	r := s.current()
	return s.d.prof.slots && r != nil && s.d.hub.Get(r.Name) == r
}
