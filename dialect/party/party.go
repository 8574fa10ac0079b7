// Package party is the Party-Sockets dialect (seed 002): clients create
// rooms with short codes, join them by code, and relay JSON to every other
// member or to one. See PROTOCOLS.md "party".
//
// Concurrency: Session methods run on the connection's event loop. Room
// membership and retained state are shared across loops through
// routing.Room (lock-free fan-out; joins and leaves under the room's lock).
package party

import (
	"crypto/rand"
	"encoding/base64"
	mrand "math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytedance/sonic"

	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/msg"
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
	cl     *clustered // nil: single node (cluster.go)
}

// New returns the dialect with the in-process broker.
func New(cfg Config) *Dialect {
	return &Dialect{cfg: cfg, hub: routing.NewHub(), broker: routing.LocalBroker{}}
}

func (d *Dialect) Name() string                        { return "party" }
func (d *Dialect) Accept(*dialect.Request) error       { return nil }
func (d *Dialect) Rooms() int64                        { return d.hub.Rooms() }
func (d *Dialect) Hub() *routing.Hub                   { return d.hub }
func (d *Dialect) Open(c dialect.Conn) dialect.Session { return &session{d: d, c: c} }

// roomState is the party state of a room.
type roomState struct {
	mu    sync.Mutex     // guards the following
	state *routing.Frame // retained "state" frame, nil if none

	// cluster mode only
	id     string            // the room's id in the registry
	rev    uint64            // state's revision in the registry
	roster map[string]string // clientId -> node (cluster.Node.Member), every node's members
}

// member is the party data of a routing.Member.
type member struct {
	token    string
	quotedID []byte      // the clientId as a JSON string, encoded once
	replaced atomic.Bool // a newer connection took this clientId
	inst     string      // cluster mode: this connection's instance in the registry
}

type session struct {
	d    *Dialect
	c    dialect.Conn
	room *routing.Room
	me   *routing.Member
	cs   clusterSession // cluster mode only (cluster.go)
}

// request is every field any party message may carry, undecoded.
type request struct {
	Type       sonic.NoCopyRawMessage `json:"type"`
	ClientID   sonic.NoCopyRawMessage `json:"clientId"`
	MaxClients sonic.NoCopyRawMessage `json:"maxClients"`
	Room       sonic.NoCopyRawMessage `json:"room"`
	To         sonic.NoCopyRawMessage `json:"to"`
	Token      sonic.NoCopyRawMessage `json:"token"`
	Data       sonic.NoCopyRawMessage `json:"data"`
	State      sonic.NoCopyRawMessage `json:"state"`
}

var reqPool = sync.Pool{New: func() any { return new(request) }}

func (s *session) OnMessage(kind codec.Kind, payload []byte) {
	if s.d.cl != nil && s.hold(kind, payload) {
		return
	}
	if kind != codec.KindText {
		s.fail("binary frames are not supported: send JSON text")
		return
	}
	req := reqPool.Get().(*request)
	defer func() { *req = request{}; reqPool.Put(req) }()
	switch msg.Decode(payload, req) {
	case msg.NotObject:
		s.fail("message must be a JSON object")
	case msg.Invalid:
		s.fail("invalid JSON")
	default:
		s.dispatch(req)
	}
}

func (s *session) dispatch(req *request) {
	switch string(req.Type) { // the raw JSON string: no allocation
	case `"send"`:
		s.send(req)
	case `"create"`:
		s.create(req)
	case `"join"`:
		s.join(req)
	case `"leave"`:
		if s.current() == nil {
			s.fail("not in a room")
			return
		}
		s.leave()
	case `"set_state"`:
		s.setState(req)
	default:
		s.dispatchSlow(req)
	}
}

// dispatchSlow handles a type that is escaped, misspelt or missing.
func (s *session) dispatchSlow(req *request) {
	typ, ok := codec.Str(req.Type)
	if !ok {
		s.fail("missing or invalid type")
		return
	}
	q := codec.AppendString(nil, typ)
	if string(q) != string(req.Type) { // written with escapes: dispatch again
		req.Type = q
		switch typ {
		case "send", "create", "join", "leave", "set_state":
			s.dispatch(req)
			return
		}
	}
	s.fail("unknown type: " + typ)
}

func (s *session) OnTimer(time.Time) {}

func (s *session) OnClose() {
	if s.d.cl != nil {
		s.closeCluster()
	}
	if s.room != nil {
		s.leave()
	}
}

// current returns the session's room, or nil when it has none or its
// clientId was taken over by a newer connection.
func (s *session) current() *routing.Room {
	if s.room == nil || s.me.Data.(*member).replaced.Load() {
		return nil
	}
	return s.room
}

func (s *session) fail(msg string) {
	f := routing.NewText()
	f.AppendStr(`{"type":"error","message":`)
	f.SetBuf(codec.AppendString(f.Buf(), msg))
	f.Append('}')
	s.c.Send(f.End(), false)
	f.Release()
}

func clientID(raw []byte) (string, bool) {
	id, ok := codec.Str(raw)
	if !ok || len(id) == 0 || len(id) > 128 {
		return "", false
	}
	return id, true
}

func (s *session) create(req *request) {
	if s.room != nil {
		s.fail("already in a room: leave it first")
		return
	}
	id, ok := clientID(req.ClientID)
	if !ok {
		s.fail("missing or invalid clientId: a string of 1-128 bytes")
		return
	}
	max := s.d.cfg.MaxClients
	if len(req.MaxClients) > 0 && string(req.MaxClients) != "null" {
		n, ok := parseInt(req.MaxClients)
		if !ok || n < 1 || n > s.d.cfg.MaxClients {
			s.fail("invalid maxClients: an integer from 1 to " + itoa(s.d.cfg.MaxClients))
			return
		}
		max = n
	}
	if s.d.cl != nil {
		s.createCluster(id, max)
		return
	}
	var r *routing.Room
	for i := 0; i < 64 && r == nil; i++ {
		r = s.d.hub.Create(s.d.newCode(), max)
	}
	if r == nil {
		s.fail("no free room code: try again")
		return
	}
	r.SetExt(&roomState{})
	m := newMember(id, s.c)
	if _, err := r.Join(m, nil, func([]*routing.Member) {
		f := routing.NewText()
		f.AppendStr(`{"type":"created","room":`)
		f.SetBuf(codec.AppendString(f.Buf(), r.Name))
		f.AppendStr(`,"token":`)
		f.SetBuf(codec.AppendString(f.Buf(), m.Data.(*member).token))
		f.Append('}')
		s.c.Send(f.End(), false)
		f.Release()
	}); err != nil {
		s.fail("room " + err.Error())
		return
	}
	s.room, s.me = r, m
}

func (s *session) join(req *request) {
	if s.room != nil {
		s.fail("already in a room: leave it first")
		return
	}
	id, ok := clientID(req.ClientID)
	if !ok {
		s.fail("missing or invalid clientId: a string of 1-128 bytes")
		return
	}
	code, ok := codec.Str(req.Room)
	if !ok || code == "" {
		s.fail("missing or invalid room: a room code string")
		return
	}
	code = strings.ToUpper(code)
	token, hasToken := codec.Str(req.Token)
	if len(req.Token) > 0 && string(req.Token) != "null" && !hasToken {
		s.fail("invalid token: a string")
		return
	}
	if s.d.cl != nil {
		s.joinCluster(id, code, token, hasToken)
		return
	}
	r := s.d.hub.Get(code)
	if r == nil {
		s.fail("room not found: " + code)
		return
	}
	m := newMember(id, s.c)
	replacing := false
	old, err := r.Join(m, func(old *routing.Member) error {
		om := old.Data.(*member)
		switch {
		case hasToken && token != om.token:
			return errBadToken
		case !hasToken && s.d.cfg.StrictReconnect:
			return errNeedToken
		}
		m.Data.(*member).token = om.token // the token belongs to the clientId
		replacing = true
		return nil
	}, func(members []*routing.Member) {
		s.sendJoined(r, m, members)
		if !replacing { // a reconnect is silent to the others
			s.announce(r, `{"type":"peer_joined","clientId":`, m, s.c)
		}
	})
	switch err {
	case nil:
	case routing.ErrRoomGone:
		s.fail("room not found: " + code)
		return
	case routing.ErrRoomFull:
		s.fail("room full: " + code + " has " + itoa(r.Max) + " clients")
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
func (s *session) announce(r *routing.Room, prefix string, m *routing.Member, except routing.Sender) {
	f := routing.NewText()
	f.AppendStr(prefix)
	f.Append(m.Data.(*member).quotedID...)
	f.Append('}')
	s.d.broker.Publish(r, f.End(), except, false)
	f.Release()
}

type errText string

func (e errText) Error() string { return string(e) }

const (
	errBadToken  = errText("invalid token for this clientId")
	errNeedToken = errText("token required to replace this clientId")
)

// sendJoined queues "joined" (and the retained state) to the joiner; it
// runs under the room's lock, before the joiner is visible to fan-out.
func (s *session) sendJoined(r *routing.Room, m *routing.Member, members []*routing.Member) {
	s.sendJoinedWith(r, m, func(f *routing.Frame) {
		for i, x := range members {
			if i > 0 {
				f.Append(',')
			}
			f.Append(x.Data.(*member).quotedID...)
		}
	})
}

// sendJoinedWith queues "joined", with the clients written by appendIDs,
// then the room's retained state. Single-node and cluster joins share it.
func (s *session) sendJoinedWith(r *routing.Room, m *routing.Member, appendIDs func(*routing.Frame)) {
	f := routing.NewText()
	f.AppendStr(`{"type":"joined","room":`)
	f.SetBuf(codec.AppendString(f.Buf(), r.Name))
	f.AppendStr(`,"clients":[`)
	appendIDs(f)
	f.AppendStr(`],"token":`)
	f.SetBuf(codec.AppendString(f.Buf(), m.Data.(*member).token))
	f.Append('}')
	s.c.Send(f.End(), false)
	f.Release()
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
	if s.d.cl != nil {
		s.leaveCluster(r, m)
		return
	}
	removed, remaining := r.LeaveThen(m, func([]*routing.Member) {
		s.announce(r, `{"type":"peer_left","clientId":`, m, nil)
	})
	if removed && remaining == 0 {
		dropState(r)
	}
}

func (s *session) send(req *request) {
	r := s.current()
	if r == nil {
		s.fail("not in a room")
		return
	}
	var target *routing.Member
	if len(req.To) > 0 && string(req.To) != "null" {
		if raw, ok := codec.StrRaw(req.To); ok { // the common case: no escapes, no allocation
			target = r.LookupBytes(raw)
		}
		to, ok := "", true
		if target == nil {
			to, ok = codec.Str(req.To)
		}
		if !ok {
			s.fail("invalid to: a clientId string")
			return
		}
		if target == nil {
			target = r.Lookup(to)
		}
		if target == nil {
			if s.d.cl != nil {
				s.sendToRemote(r, to, req.Data)
				return
			}
			s.fail("unknown target: " + to)
			return
		}
	}
	f := routing.NewText()
	f.AppendStr(`{"type":"message","from":`)
	f.Append(s.me.Data.(*member).quotedID...)
	if len(req.Data) > 0 {
		f.AppendStr(`,"data":`)
		f.Append(req.Data...)
	}
	f.Append('}')
	f.End()
	if target != nil {
		target.Conn.Send(f, false)
	} else {
		s.d.broker.Publish(r, f, s.c, false)
	}
	f.Release()
}

func (s *session) setState(req *request) {
	r := s.current()
	if r == nil {
		s.fail("not in a room")
		return
	}
	if len(req.State) == 0 {
		s.fail("missing state")
		return
	}
	if len(req.State) > s.d.cfg.MaxState {
		s.fail("state too large: " + itoa(len(req.State)) + " bytes encoded, the limit is " + itoa(s.d.cfg.MaxState))
		return
	}
	f := routing.NewText()
	f.AppendStr(`{"type":"state","state":`)
	f.Append(req.State...)
	f.Append('}')
	f.End()
	if s.d.cl != nil {
		s.setStateCluster(r, f)
		return
	}
	st, _ := r.Ext().(*roomState)
	if st == nil {
		f.Release()
		return
	}
	st.mu.Lock()
	old := st.state
	st.state = f // the room keeps the caller's reference
	st.mu.Unlock()
	if old != nil {
		old.Release()
	}
	s.d.broker.Publish(r, f, nil, false)
}

func newMember(id string, c dialect.Conn) *routing.Member {
	var b [16]byte
	_, _ = rand.Read(b[:])
	pm := &member{token: base64.RawURLEncoding.EncodeToString(b[:]), quotedID: codec.AppendString(nil, id)}
	return &routing.Member{ID: strings.Clone(id), Conn: c, Data: pm}
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

func itoa(n int) string { return string(codec.AppendInt(nil, int64(n))) }
