// Package party is the Party-Sockets dialect (seed 002): clients create
// rooms with short codes, join them by code, and relay JSON to every other
// member or to one. See docs/protocols.md "party"; party-v2 (v2.go) is
// the same machinery with the 2.x rules.
//
// The sessions speak the protocol and check each request; what a request
// does to the rooms is the roomStore's (rooms.go), chosen once when the
// dialect is wired and never tested again: local (New; local.go) keeps the
// rooms in this node's hub, with seats, history, persistence and the
// listing; shared (UseCluster; cluster.go and the other cluster*.go files)
// keeps them in the cluster's registry and room logs, the hub holding this
// node's members of them. The rooms API (api.go) and GET /room (plain.go)
// go through the same store.
//
// Concurrency: Session methods run on the connection's event loop. Room
// membership and retained state are shared across loops through
// routing.Room (lock-free fan-out; joins and leaves under the room's lock).
// The local store finishes every operation on the loop; the shared store
// runs registry calls on the node's worker pool and finishes on the
// connection's loop through Conn.Do, the session holding its later
// messages in its gate (pendingOps) meanwhile. The join hook (joinhook.go)
// calls the game's backend on its own bounded pool and finishes the same
// way. The rooms API runs on net/http goroutines and never waits for a
// loop.
package party

import (
	"crypto/rand"
	"encoding/base64"
	"log/slog"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytedance/sonic"

	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/msg"
	"partyline/internal/security"
	"partyline/routing"
)

// Alphabet holds the room-code characters: upper case without the
// look-alikes 0/O and 1/I/L.
const Alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// Dialect is the party dialect; one per server.
type Dialect struct {
	cfg    Config
	hub    *routing.Hub
	broker routing.Broker
	rooms  roomStore // local (local.go), or shared (cluster.go) after UseCluster
	log    *slog.Logger

	held      routing.Gauge     // bytes held by every room's history
	persist   *persister        // nil: rooms are not persisted (persist.go)
	draining  atomic.Bool       // the server is shutting down: seats stay as they are
	ipFails   *security.Limiter // failed joins per address
	states    stateBudget       // retained state bytes of every room (limits.go)
	sweepStop chan struct{}     // stops the history sweeper (persist.go)

	events dialect.Events        // nil: no webhooks (events.go)
	onGone func(r *routing.Room) // the store's or the cluster's part of the hub's OnGone

	prof    *profile     // party or party-v2 (v2.go)
	hook    *joinHook    // --party-auth-url; nil: none (joinhook.go)
	origins *originTable // per-origin counters of the HTTP /metrics (plain.go)
	started time.Time
}

// New returns the dialect with the in-process broker.
func New(cfg Config) *Dialect {
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	d := &Dialect{cfg: cfg, hub: routing.NewHub(), broker: routing.LocalBroker{}, log: log,
		ipFails: security.PerMinute(cfg.JoinFailuresPerMinutePerIP),
		prof:    v1Profile, origins: newOriginTable(), started: time.Now(), hook: newJoinHook(&cfg)}
	d.states.max = cfg.MaxStateBytesTotal
	d.rooms = local{d}
	d.hub.OnGone(d.gone)
	d.events = cfg.Events
	return d
}

func (d *Dialect) Name() string      { return d.prof.name }
func (d *Dialect) Rooms() int64      { return d.hub.Rooms() }
func (d *Dialect) Hub() *routing.Hub { return d.hub }

func (d *Dialect) Accept(*dialect.Request) error { return nil }

func (d *Dialect) Open(c dialect.Conn) dialect.Session {
	d.origins.connected(originOf(c))
	return &session{d: d, c: c}
}

// roomState is the party state of a room.
type roomState struct {
	mu    sync.Mutex     // guards the following
	state *routing.Frame // retained "state" frame, nil if none

	// state's share of --max-state-bytes-total (limits.go); guarded by mu
	counted int64        // bytes counted in budget
	budget  *stateBudget // where counted is counted; nil: nowhere yet

	trimmed uint64 // history the store was told to drop; guarded by the room's lock

	born   bool      // room.created was emitted (events.go); guarded by the room's lock
	origin string    // the creator's handshake Origin ("unknown" if none)
	slot   *slotRoom // party-v2 rooms only (v2.go)

	// the rooms API's listing (metadata.go); guarded by mu
	public bool
	meta   []byte // JSON, at most dialect.MaxMetadata bytes; nil: none

	// the shared store (cluster.go) only
	id     string            // the room's id in the registry
	rev    uint64            // the seq of state (cluster_log.go keepState)
	roster map[string]string // clientId -> node (backplane.Cluster.Member), every node's members
	slots  map[int]string    // party-v2: connected slot index -> clientId, every node's members
}

// rosterEvent applies a membership event (join, replace, back, away,
// leave) of x to the roster. Under st.mu.
func (st *roomState) rosterEvent(ev string, x recMember) {
	if ev != "leave" {
		st.roster[x.Client] = x.Member
		x.Off = false
		st.seat(x)
		return
	}
	if st.roster[x.Client] == x.Member {
		delete(st.roster, x.Client)
	}
	x.Off = true
	st.seat(x)
}

// seat records a party-v2 slot's state in slots. Under st.mu.
func (st *roomState) seat(x recMember) {
	if st.slots == nil {
		return
	}
	switch {
	case !x.Off:
		st.slots[x.Index] = x.Client
	case st.slots[x.Index] == x.Client:
		delete(st.slots, x.Index)
	}
}

// member is the party data of a routing.Member.
type member struct {
	token    string
	quotedID []byte      // the clientId as a JSON string, encoded once
	replaced atomic.Bool // a newer connection took this clientId
	inst     string      // shared store: this connection's instance in the registry
	away     bool        // a seat kept for a member whose connection dropped (seats.go)
	restored bool        // an away seat restored from the store: only its token reclaims it
	index    int         // party-v2: the slot index (quotedID is its decimal form)
	meta     []byte      // the join hook's metadata (compact JSON), nil: none
}

type session struct {
	d     *Dialect
	c     dialect.Conn
	room  *routing.Room
	me    *routing.Member
	pend  pendingOps // an operation in flight and the messages it holds back (cluster.go, joinhook.go)
	fails bucket     // failed joins of this connection (seats.go)

	creates bucket // rooms this connection created (limits.go)

	// the join hook (joinhook.go)
	hook   *hookCall // the call in flight, nil: none
	raw    []byte    // the message being handled (valid during OnMessage only)
	authed bool      // the create or join being handled was approved
	grant  []byte    // and this is its member's metadata
}

// request is every field any party message may carry, undecoded.
type request struct {
	Type       sonic.NoCopyRawMessage `json:"type"`
	ClientID   sonic.NoCopyRawMessage `json:"clientId"`
	MaxClients sonic.NoCopyRawMessage `json:"maxClients"`
	Room       sonic.NoCopyRawMessage `json:"room"`
	To         sonic.NoCopyRawMessage `json:"to"`
	Since      sonic.NoCopyRawMessage `json:"since"`
	Token      sonic.NoCopyRawMessage `json:"token"`
	Data       sonic.NoCopyRawMessage `json:"data"`
	State      sonic.NoCopyRawMessage `json:"state"`
	URL        sonic.NoCopyRawMessage `json:"url"`
	Public     sonic.NoCopyRawMessage `json:"public"`
	Metadata   sonic.NoCopyRawMessage `json:"metadata"`
}

var reqs = msg.Reader[request]{
	Binary:    "binary frames are not supported: send JSON text",
	NotObject: errUnknownType, // Party-Sockets reads no type from it
	Invalid:   errInvalidJSON,
}

func (s *session) OnMessage(kind codec.Kind, payload []byte) {
	if s.pend.gate.Defer(s.c, kind, payload, "too many messages while a join is in progress") {
		return
	}
	if s.d.prof.slots {
		kind = codec.KindText // party-v2 reads binary frames as text
	}
	if req := reqs.Read(kind, payload, s.fail); req != nil {
		s.raw = payload // for the join hook (joinhook.go)
		s.dispatch(req)
		reqs.Done(req)
		s.raw = nil
	}
}

func (s *session) dispatch(req *request) {
	switch string(req.Type) { // the raw JSON string: no allocation
	case `"send"`:
		s.send(req)
	case `"create"`:
		if s.d.prof.slots {
			s.createV2(req)
			return
		}
		s.create(req)
	case `"join"`:
		if s.d.prof.slots {
			s.joinV2(req)
			return
		}
		s.join(req)
	case `"close_room"`:
		if !s.d.prof.slots {
			s.fail(errUnknownType)
			return
		}
		s.closeRoom()
	case `"leave"`:
		if s.d.prof.slots {
			s.fail(errUnknownType)
			return
		}
		if s.current() == nil {
			s.fail(errNotInRoom)
			return
		}
		s.leave()
	case `"set_state"`:
		s.setState(req)
	case `"set_metadata"`:
		s.setMetadata(req)
	default:
		s.dispatchSlow(req)
	}
}

// dispatchSlow handles a type that is escaped, misspelt or missing.
func (s *session) dispatchSlow(req *request) {
	typ, ok := codec.Str(req.Type)
	if !ok {
		s.fail(errUnknownType)
		return
	}
	q := codec.AppendString(nil, typ)
	if string(q) != string(req.Type) { // written with escapes: dispatch again
		req.Type = q
		switch typ {
		case "send", "create", "join", "leave", "set_state", "close_room", "set_metadata":
			s.dispatch(req)
			return
		}
	}
	s.fail(errUnknownType)
}

func (s *session) OnTimer(time.Time) {}

func (s *session) OnClose() {
	s.closeHook()
	s.d.rooms.abort(s)
	if s.d.prof.slots {
		s.closeV2()
		return
	}
	if s.room == nil {
		return
	}
	if s.current() != nil && s.d.rooms.keepSeat(s) {
		return
	}
	s.leave()
}

// current returns the session's room, or nil when it has none or its
// clientId was taken over by a newer connection.
func (s *session) current() *routing.Room {
	if s.room == nil || s.me.Data.(*member).replaced.Load() {
		return nil
	}
	return s.room
}

func (s *session) fail(text string) { msg.SendError(s.c, text) }

// ErrorFrame implements dialect.ErrorReplier.
func (*Dialect) ErrorFrame(text string) *routing.Frame { return msg.ErrorFrame(text) }

// entering checks what create and join share, in Party-Sockets' order:
// the connection holds no room, and clientId is a non-empty string (party
// also caps it at 128 bytes). On failure it answers and returns false.
func (s *session) entering(req *request) (string, bool) {
	if s.room != nil {
		s.fail(errAlreadyInRoom)
		return "", false
	}
	id, ok := codec.Str(req.ClientID)
	switch {
	case !ok || len(id) == 0:
		s.fail(errClientIDRequired)
		return "", false
	case len(id) > 128 && !s.d.prof.slots:
		s.fail("clientId too long: at most 128 bytes")
		return "", false
	case id == ServerID && !s.d.prof.slots:
		s.fail(errReservedID)
		return "", false
	}
	return id, true
}

// roomCode reads a join's room; on failure it answers and returns false.
func (s *session) roomCode(req *request) (string, bool) {
	code, ok := codec.Str(req.Room)
	if !ok || code == "" {
		s.fail(errRoomRequired)
		return "", false
	}
	return code, true
}

func (s *session) create(req *request) {
	id, ok := s.entering(req)
	if !ok {
		return
	}
	max := s.d.cfg.MaxClients
	if len(req.MaxClients) > 0 && string(req.MaxClients) != "null" {
		if v, isNum := jsonNumber(req.MaxClients); !isNum || v < 1 {
			s.fail(errMaxClients)
			return
		}
		n, ok := parseInt(req.MaxClients)
		if !ok || n > s.d.cfg.MaxClients {
			s.fail("maxClients must be an integer from 1 to " + itoa(s.d.cfg.MaxClients))
			return
		}
		max = n
	}
	listing, ok := s.listing(req)
	if !ok {
		return
	}
	if s.mustAuthorize() {
		s.authorize("create", id, "")
		return
	}
	if why := s.mayCreate(); why != "" {
		s.fail(why)
		return
	}
	s.d.rooms.create(s, id, max, listing)
}

// create makes the room on this node with the session as its first
// member.
func (local) create(s *session, id string, max int, listing listingReq) {
	var r *routing.Room
	for i := 0; i < 64 && r == nil; i++ {
		r = s.d.hub.CreateSequenced(s.d.newCode(), max, time.Time{}, newEpoch(), 0, s.d.historyLimits(), &s.d.held)
	}
	if r == nil {
		s.fail("no free room code: try again")
		return
	}
	r.SetExt(&roomState{origin: originOf(s.c), public: listing.public, meta: listing.meta})
	s.d.origins.roomCreated(originOf(s.c))
	m := newMember(id, s.c)
	m.Data.(*member).meta = s.grant
	if _, err := r.Join(m, nil, func(members []*routing.Member) {
		f := routing.NewText()
		f.AppendStr(`{"type":"created","room":`)
		f.SetBuf(codec.AppendString(f.Buf(), r.Name))
		s.d.appendPlace(f)
		f.AppendStr(`,"token":`)
		f.SetBuf(codec.AppendString(f.Buf(), m.Data.(*member).token))
		appendOffset(f, r)
		f.Append('}')
		s.c.Send(f.End(), false)
		f.Release()
		s.d.persistSeats(r, members)
		s.d.joined(r, m)
	}); err != nil {
		s.fail("room " + err.Error())
		return
	}
	s.room, s.me = r, m
}

// joining checks what every join starts with: the connection holds no
// room, a clientId and a room code; on failure it answers and returns false.
func (s *session) joining(req *request) (id, code string, ok bool) {
	if id, ok = s.entering(req); ok {
		code, ok = s.roomCode(req)
	}
	return id, code, ok
}

func (s *session) join(req *request) {
	id, code, ok := s.joining(req)
	if !ok {
		return
	}
	code = strings.ToUpper(code)
	token, hasToken := codec.Str(req.Token)
	if len(req.Token) > 0 && string(req.Token) != "null" && !hasToken {
		s.fail("invalid token: a string")
		return
	}
	since, err := parseSince(req.Since)
	if err != nil {
		s.fail(err.Error())
		return
	}
	if s.mustAuthorize() {
		s.authorize("join", id, code)
		return
	}
	s.d.rooms.join(s, id, code, token, hasToken, since)
}

// join adds the session to the room on this node: a clientId with a
// seat replaces it (with its token), else a new seat if there is room.
func (local) join(s *session, id, code, token string, hasToken bool, since *sinceReq) {
	r := s.d.hub.Get(code)
	if r == nil {
		s.joinFailed(errRoomNotFound)
		return
	}
	m := newMember(id, s.c)
	m.Data.(*member).meta = s.grant
	replacing, back := false, false
	old, err := r.Join(m, func(old *routing.Member) error {
		om := old.Data.(*member)
		switch {
		case hasToken && token != om.token:
			security.Record("party_token_mismatch", "room", code, "addr", s.c.Request().RemoteAddr)
			return errBadToken
		case !hasToken && om.restored:
			return errSeatToken
		case !hasToken && s.d.cfg.StrictReconnect:
			return errNeedToken
		}
		m.Data.(*member).token = om.token // the token belongs to the clientId
		replacing, back = true, om.away
		return nil
	}, func(members []*routing.Member) {
		s.sendJoined(r, m, members, since)
		switch {
		case back:
			s.d.announceJoin(r, peerBack, m, s.c)
		case !replacing: // a reconnect is silent to the others
			s.d.announceJoin(r, s.d.prof.peerJoined, m, s.c)
			s.d.joined(r, m)
		}
		s.d.persistSeats(r, members)
	})
	switch err {
	case nil:
	case routing.ErrRoomGone:
		s.joinFailed(errRoomNotFound)
		return
	case routing.ErrRoomFull:
		s.fail(errRoomFull)
		return
	default:
		s.fail(err.Error())
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

// announce publishes prefix+m's quoted clientId+"}" to r's members except
// except. Joins and leaves call it under the room's lock (Join's before,
// LeaveThen's after), so it reaches exactly the membership on the other
// side of that change.
func (d *Dialect) announce(r *routing.Room, prefix string, m *routing.Member, except routing.Sender) {
	d.announceWith(r, prefix, m, except, nil)
}

// peerBack is the prefix of party's peer_back.
const peerBack = `{"type":"peer_back","clientId":`

// announceJoin is announce of a member's arrival (peer_joined, peer_back):
// with the join hook's metadata, if any, as "metadata".
func (d *Dialect) announceJoin(r *routing.Room, prefix string, m *routing.Member, except routing.Sender) {
	d.announceWith(r, prefix, m, except, m.Data.(*member).meta)
}

func (d *Dialect) announceWith(r *routing.Room, prefix string, m *routing.Member, except routing.Sender, meta []byte) {
	f := routing.NewText()
	f.AppendStr(prefix)
	f.Append(m.Data.(*member).quotedID...)
	appendMeta(f, meta)
	f.Append('}')
	d.broker.Publish(r, f.End(), except, false)
	f.Release()
}

// Party-Sockets' error texts, exact: its clients compare them. Errors of
// partyline's own extensions (tokens, since, set_state, leave, limits)
// have texts that name the problem.
const (
	errAlreadyInRoom    = "Already in a room"
	errClientIDRequired = "clientId is required"
	errMaxClients       = "maxClients must be a positive number"
	errRoomRequired     = "room is required"
	errRoomNotFound     = "Room not found"
	errRoomFull         = "Room is full"
	errNotInRoom        = "Not in a room"
	errTargetNotFound   = "Target client not found"
	errInvalidJSON      = "Invalid JSON"
	errUnknownType      = "Unknown message type"
)

type errText string

func (e errText) Error() string { return string(e) }

const (
	errBadToken  = errText("invalid token for this clientId")
	errNeedToken = errText("token required to replace this clientId")
	errSeatToken = errText("token required to reclaim this seat")
)

// sendJoined queues "joined" (and the retained state, or the frames the
// member missed) to the joiner; it runs under the room's lock, before the
// joiner is visible to fan-out.
func (s *session) sendJoined(r *routing.Room, m *routing.Member, members []*routing.Member, since *sinceReq) {
	s.sendJoinedWith(r, m, func(f *routing.Frame) {
		for i, x := range members {
			if i > 0 {
				f.Append(',')
			}
			f.Append(x.Data.(*member).quotedID...)
		}
		f.Append(']')
		n := 0
		for _, x := range members {
			if x.Data.(*member).away {
				if n == 0 {
					f.AppendStr(`,"away":[`)
				} else {
					f.Append(',')
				}
				f.Append(x.Data.(*member).quotedID...)
				n++
			}
		}
		if n > 0 {
			f.Append(']')
		}
		n = 0
		for _, x := range members {
			if pm := x.Data.(*member); pm.meta != nil {
				n = appendMetaEntry(f, n, pm.quotedID, pm.meta)
			}
		}
		if n > 0 {
			f.Append('}')
		}
	}, since)
}

// appendMeta writes `,"metadata":meta` when meta is not nil.
func appendMeta(f *routing.Frame, meta []byte) {
	if meta != nil {
		f.AppendStr(`,"metadata":`)
		f.Append(meta...)
	}
}

// appendMetaEntry writes the n-th entry of joined's "metadata" object
// (`,"metadata":{` before the first), key being a JSON string or a slot
// index's digits; it returns n+1. The caller closes the object.
func appendMetaEntry(f *routing.Frame, n int, key, meta []byte) int {
	if n == 0 {
		f.AppendStr(`,"metadata":{`)
	} else {
		f.Append(',')
	}
	if key[0] != '"' {
		f.Append('"')
		f.Append(key...)
		f.Append('"')
	} else {
		f.Append(key...)
	}
	f.Append(':')
	f.Append(meta...)
	return n + 1
}

// sendJoinedWith queues "joined", with the clients written by appendIDs
// (which closes the array), then the room's retained state, or with a
// recovered since the frames after it. Single-node and cluster joins
// share it (cluster rooms have no offsets).
func (s *session) sendJoinedWith(r *routing.Room, m *routing.Member, appendIDs func(*routing.Frame), since *sinceReq) {
	f := routing.NewText()
	f.AppendStr(`{"type":"joined","room":`)
	f.SetBuf(codec.AppendString(f.Buf(), r.Name))
	f.AppendStr(`,"clients":[`)
	appendIDs(f)
	f.AppendStr(`,"token":`)
	f.SetBuf(codec.AppendString(f.Buf(), m.Data.(*member).token))
	appendOffset(f, r)
	recovered := false
	if since != nil {
		epoch, _ := r.OffsetLocked()
		recovered = epoch != "" && since.epoch == epoch && r.Replay(m.ID, since.seq, nil)
		if recovered {
			f.AppendStr(`,"recovered":true`)
		} else {
			f.AppendStr(`,"recovered":false`)
		}
	}
	f.Append('}')
	s.c.Send(f.End(), false)
	f.Release()
	if recovered {
		// Everything after since, in order: the newest state among it if
		// it changed, and nothing the member already had.
		r.Replay(m.ID, since.seq, func(e *routing.Entry) { s.c.Send(e.F, false) })
		return
	}
	if st, ok := r.Ext().(*roomState); ok {
		st.mu.Lock()
		if st.state != nil {
			s.c.Send(st.state, false)
		}
		st.mu.Unlock()
	}
}

// dropState releases the retained state of a room that has emptied.
func dropState(r *routing.Room) {
	if st, ok := r.Ext().(*roomState); ok {
		st.mu.Lock()
		if st.budget != nil {
			st.budget.resize(st, 0)
		}
		if st.state != nil {
			st.state.Release()
			st.state = nil
		}
		st.mu.Unlock()
	}
}

func (s *session) leave() {
	r, m := s.room, s.me
	s.room, s.me = nil, nil
	s.d.rooms.leave(s, r, m)
}

// dropSeat removes m from r for good: peer_left to the rest, and the room
// is gone (state, store) if it was the last seat. Any goroutine.
func (d *Dialect) dropSeat(r *routing.Room, m *routing.Member) {
	removed, remaining := r.LeaveThenAll(m, func(members []*routing.Member) {
		if len(members) > 0 {
			d.announce(r, d.prof.peerLeft, m, nil)
			d.persistSeats(r, members)
		}
		d.emitLocal(dialect.MemberLeft, r.Name, m.ID)
	})
	if removed && remaining == 0 {
		dropState(r)
	}
}

func (s *session) send(req *request) {
	r := s.current()
	if r == nil {
		s.fail(errNotInRoom)
		return
	}
	if s.d.prof.slots {
		s.d.rooms.sendV2(s, r, req)
		return
	}
	s.d.rooms.send(s, r, req)
}

// send publishes the member's message in r, with the room's next seq,
// to everyone else or to one.
func (local) send(s *session, r *routing.Room, req *request) {
	var to []byte // the target's clientId, nil: everyone else
	if len(req.To) > 0 && string(req.To) != "null" {
		raw, ok := codec.StrRaw(req.To) // the common case: no escapes, no allocation
		if !ok {
			var str string
			if str, ok = codec.Str(req.To); !ok {
				s.fail(errTargetNotFound) // Party-Sockets looks it up all the same
				return
			}
			raw = []byte(str)
		}
		to = raw
	}
	f := s.messageFrame(req.Data)
	seq := r.BeginSeq()
	var target *routing.Member
	if to != nil {
		if target = r.LookupLocked(to); target == nil {
			r.EndSeq()
			f.Release()
			s.fail(errTargetNotFound)
			return
		}
	}
	appendSeq(f, seq)
	toID := ""
	if target != nil {
		r.SendTo(target, f, false) // behind the room's earlier frames
		toID = target.ID
	} else {
		s.d.broker.Publish(r, f, s.c, false)
	}
	s.d.committed(r, f, seq, s.me.ID, toID, r.CommitSeq(f, s.me.ID, toID))
	r.EndSeq()
	f.Release()
}

// messageFrame starts a "message" frame from this member with data; the
// caller closes it (seq, '}') and calls End.
func (s *session) messageFrame(data []byte) *routing.Frame {
	f := routing.NewText()
	f.AppendStr(`{"type":"message","from":`)
	f.Append(s.me.Data.(*member).quotedID...)
	if len(data) > 0 {
		f.AppendStr(`,"data":`)
		f.Append(data...)
	}
	return f
}

func (s *session) setState(req *request) {
	if s.d.prof.slots {
		s.setStateV2(req)
		return
	}
	r := s.current()
	if r == nil {
		s.fail(errNotInRoom)
		return
	}
	if len(req.State) == 0 {
		s.fail("set_state needs a state field")
		return
	}
	if len(req.State) > s.d.cfg.MaxState {
		s.fail("state too large: " + itoa(len(req.State)) + " bytes encoded, the limit is " + itoa(s.d.cfg.MaxState))
		return
	}
	st, _ := r.Ext().(*roomState)
	if !r.Sequenced() || st == nil {
		return
	}
	// The state's share of --max-state-bytes-total is reserved at its
	// largest before its seq is taken, and set to its size once built.
	st.mu.Lock()
	fits := s.d.states.resize(st, int64(len(req.State)+stateEnvelope))
	st.mu.Unlock()
	if !fits {
		s.fail("state not kept: the server's retained state is full (" + itoa(int(s.d.cfg.MaxStateBytesTotal)) + " bytes in all rooms); try again later")
		return
	}
	s.d.rooms.setState(s, r, st, req.State)
}

// setState makes state the room's retained state, with the room's next
// seq, and publishes it to every member.
func (local) setState(s *session, r *routing.Room, st *roomState, state []byte) {
	seq := r.BeginSeq()
	if s.d.hub.Get(r.Name) != r { // closed through the API since current(): dropState has run
		r.EndSeq()
		st.mu.Lock()
		s.d.states.resize(st, 0)
		st.mu.Unlock()
		return
	}
	f := stateFrame(state, seq)
	st.mu.Lock()
	old := st.state
	st.state = f // the room keeps the caller's reference
	s.d.states.resize(st, int64(f.Len()))
	st.mu.Unlock()
	s.d.broker.Publish(r, f, nil, false)
	s.d.committed(r, f, seq, "", "", r.CommitSeq(f, "", ""))
	s.d.persistState(r, f)
	r.EndSeq()
	if old != nil {
		old.Release()
	}
}

func newMember(id string, c routing.Sender) *routing.Member {
	var b [16]byte
	_, _ = rand.Read(b[:])
	pm := &member{token: base64.RawURLEncoding.EncodeToString(b[:]), quotedID: codec.AppendString(nil, id)}
	return &routing.Member{ID: strings.Clone(id), Conn: c, Data: pm}
}

// code draws a new room code of the dialect.
func (d *Dialect) code() string {
	if d.prof.slots {
		return base58Code()
	}
	return d.newCode()
}

func (d *Dialect) newCode() string {
	b := make([]byte, d.cfg.CodeLength)
	for i := range b {
		b[i] = Alphabet[mrand.IntN(len(Alphabet))]
	}
	return string(b)
}

func parseInt(raw []byte) (int, bool) {
	if len(raw) == 0 || len(raw) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range raw {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// jsonNumber reports whether raw is a JSON number, and its value.
func jsonNumber(raw []byte) (float64, bool) {
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) {
		return 0, false
	}
	v, err := strconv.ParseFloat(string(raw), 64)
	return v, err == nil
}

func itoa(n int) string { return string(codec.AppendInt(nil, int64(n))) }
