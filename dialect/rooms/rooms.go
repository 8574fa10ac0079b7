// Package rooms is the ChatServer example of seed 003: every connection
// gets a server-generated clientId, joins any number of named rooms under
// a username, and posts messages and typing indicators to them. See
// docs/protocols.md "echo, rooms, notify".
//
// Concurrency: Session methods run on the connection's event loop; the
// session's own set of rooms is loop-only. A room is a routing.Room
// (lock-free fan-out; joins and leaves under the room's lock); it is
// deleted when its last member leaves.
package rooms

import (
	"crypto/rand"
	"errors"
	"strconv"
	"time"

	"github.com/bytedance/sonic"

	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/msg"
	"partyline/routing"
)

// Limits, in bytes: room and user names.
const (
	MaxRoomName = 256
	MaxUserName = 128
)

// Config is the rooms dialect's configuration.
type Config struct {
	// MaxPerConnection bounds the rooms one connection may be in
	// (--rooms-max-per-connection). Each membership costs a member in a
	// room snapshot and, when the connection creates the room, the room
	// itself (about 1.2 KB), so a connection joining many rooms is the
	// cheapest way to make the server hold memory.
	MaxPerConnection int
	// MaxRooms bounds the rooms of this node (--max-rooms, shared with
	// party): a join that would create one more is refused. 0: no limit.
	MaxRooms int
	// Events receives room and member events (webhooks), single node
	// only; nil: none. The server sets it.
	Events dialect.Events
}

// Defaults returns the documented defaults.
func Defaults() Config { return Config{MaxPerConnection: 64, MaxRooms: 100_000} }

// Validate checks c and fills zero values with defaults.
func (c *Config) Validate() error {
	if c.MaxPerConnection < 0 || c.MaxRooms < 0 {
		return errors.New("rooms-max-per-connection and max-rooms must not be negative")
	}
	if c.MaxPerConnection == 0 {
		c.MaxPerConnection = Defaults().MaxPerConnection
	}
	return nil
}

// Dialect is the rooms dialect; one per server.
type Dialect struct {
	cfg    Config
	hub    *routing.Hub
	broker routing.Broker
	cl     *clustered // nil: single node (cluster.go)
}

// New returns the dialect with the in-process broker; cfg must be
// validated.
func New(cfg Config) *Dialect {
	return &Dialect{cfg: cfg, hub: routing.NewHub(), broker: routing.LocalBroker{}}
}

func (d *Dialect) Name() string                  { return "rooms" }
func (d *Dialect) Accept(*dialect.Request) error { return nil }

// Rooms is the number of non-empty rooms.
func (d *Dialect) Rooms() int64 { return d.hub.Rooms() }

// Hub exposes the rooms to tests and a cluster backplane.
func (d *Dialect) Hub() *routing.Hub { return d.hub }

// The seed's reply to an unknown type, encoded once.
var unknownType = routing.NewTextFrom([]byte(`{"type":"error","message":"Unknown message type"}`))

// member is the rooms data of a routing.Member.
type member struct {
	user []byte // the username as a JSON string
	name string // the username (webhook events)
}

// joined is one of the session's rooms.
type joined struct {
	room *routing.Room
	me   *routing.Member
}

type session struct {
	d     *Dialect
	c     dialect.Conn
	id    string             // clientId
	rooms map[string]*joined // loop only
	cs    clusterSession     // cluster mode only
}

// Open sends the connection its clientId.
func (d *Dialect) Open(c dialect.Conn) dialect.Session {
	s := &session{d: d, c: c, id: newClientID(c.ID())}
	f := routing.NewText()
	f.AppendStr(`{"type":"connected","clientId":`)
	f.SetBuf(codec.AppendString(f.Buf(), s.id))
	f.Append('}')
	c.Send(f.End(), false)
	f.Release()
	return s
}

// request is every field a rooms message may carry, undecoded.
type request struct {
	Type     sonic.NoCopyRawMessage `json:"type"`
	Room     sonic.NoCopyRawMessage `json:"room"`
	Username sonic.NoCopyRawMessage `json:"username"`
	Content  sonic.NoCopyRawMessage `json:"content"`
}

// The seed answers every message it cannot parse alike.
var reqs = msg.Reader[request]{
	Binary:    "Invalid message format",
	NotObject: "Invalid message format",
	Invalid:   "Invalid message format",
}

func (s *session) OnMessage(kind codec.Kind, payload []byte) {
	if s.d.cl != nil && s.cs.gate.Defer(s.c, kind, payload, "too many messages while a join is in progress") {
		return
	}
	req := reqs.Read(kind, payload, s.fail)
	if req == nil {
		return
	}
	defer reqs.Done(req)
	typ, _ := codec.Str(req.Type)
	switch typ {
	case "join":
		s.join(req)
	case "leave":
		s.leaveReq(req)
	case "message":
		s.message(req)
	case "typing":
		s.typing(req)
	default:
		s.c.Send(unknownType, false)
	}
}

func (s *session) OnTimer(time.Time) {}

// OnClose leaves every room, telling the remaining members.
func (s *session) OnClose() {
	if s.d.cl != nil {
		s.closeCluster()
	}
	for name, j := range s.rooms {
		delete(s.rooms, name)
		s.leave(j)
	}
}

// roomName validates the request's room.
func (s *session) roomName(req *request) (string, bool) {
	name, ok := codec.Str(req.Room)
	if !ok || name == "" || len(name) > MaxRoomName {
		s.fail("Invalid room: a non-empty string of at most " + strconv.Itoa(MaxRoomName) + " bytes")
		return "", false
	}
	return name, true
}

// member returns the session's membership of the request's room, or
// replies with an error.
func (s *session) member(req *request) (string, *joined) {
	name, ok := s.roomName(req)
	if !ok {
		return "", nil
	}
	j := s.rooms[name]
	if j == nil {
		s.fail("Not a member of room " + name + ": join it first")
	}
	return name, j
}

func (s *session) join(req *request) {
	name, ok := s.roomName(req)
	if !ok {
		return
	}
	user, ok := codec.Str(req.Username)
	if !ok || user == "" || len(user) > MaxUserName {
		s.fail("Invalid username: a non-empty string of at most " + strconv.Itoa(MaxUserName) + " bytes")
		return
	}
	if s.rooms[name] != nil { // already a member: joining again changes nothing
		s.sendJoined(name)
		return
	}
	if limit := s.d.cfg.MaxPerConnection; len(s.rooms) >= limit {
		s.fail("Too many rooms: a connection may be in at most " + strconv.Itoa(limit))
		return
	}
	if limit := s.d.cfg.MaxRooms; limit > 0 && s.d.hub.Rooms() >= int64(limit) && s.d.hub.Get(name) == nil {
		s.fail("Too many rooms on this server: join an existing room or try again later")
		return
	}
	m := &routing.Member{ID: s.id, Conn: s.c, Data: &member{user: codec.AppendString(nil, user), name: user}}
	if s.d.cl != nil {
		s.joinCluster(name, m)
		return
	}
	r, _, err := s.d.hub.JoinOrCreate(name, m, nil, func(r *routing.Room, members []*routing.Member) {
		s.sendJoined(name) // reaches the joiner ahead of any room traffic
		// Under the room's lock, to the members present before this join.
		f := userFrame("userJoined", name, m, len(members))
		s.d.broker.Publish(r, f, s.c, false)
		f.Release()
		if len(members) == 1 { // the room is new: it is created with its first member
			s.d.emit(dialect.RoomCreated, name, nil)
		}
		s.d.emit(dialect.MemberJoined, name, m)
	})
	if err != nil { // clientIds are unique: cannot happen
		s.fail("Cannot join room " + name + ": " + err.Error())
		return
	}
	if s.rooms == nil {
		s.rooms = map[string]*joined{}
	}
	s.rooms[r.Name] = &joined{room: r, me: m}
}

func (s *session) sendJoined(name string) {
	f := routing.NewText()
	f.AppendStr(`{"type":"joined","room":`)
	f.SetBuf(codec.AppendString(f.Buf(), name))
	f.Append('}')
	s.c.Send(f.End(), false)
	f.Release()
}

func (s *session) leaveReq(req *request) {
	name, j := s.member(req)
	if j == nil {
		return
	}
	delete(s.rooms, name)
	s.leave(j)
}

// leave removes the session from j's room and tells the others.
func (s *session) leave(j *joined) {
	if s.d.cl != nil {
		if removed, _ := j.room.Leave(j.me); removed {
			s.d.announce("userLeft", j.room, j.me, nil)
		}
		return
	}
	// Under the room's lock, to the members that remain (none: the room is
	// gone from the hub and nobody is told).
	j.room.LeaveThenAll(j.me, func(rest []*routing.Member) {
		s.d.emit(dialect.MemberLeft, j.room.Name, j.me)
		if len(rest) == 0 { // the room is deleted with its last member
			s.d.emit(dialect.RoomClosed, j.room.Name, nil)
			return
		}
		f := userFrame("userLeft", j.room.Name, j.me, len(rest))
		s.d.broker.Publish(j.room, f, nil, false)
		f.Release()
	})
}

// emit sends a webhook event (m: the member of a member event), under the
// room's lock so that a room's events go out in order; single node only.
func (d *Dialect) emit(t dialect.EventType, room string, m *routing.Member) {
	if d.cfg.Events == nil {
		return
	}
	e := dialect.Event{Type: t, Dialect: "rooms", Room: room}
	if m != nil {
		e.Username = m.Data.(*member).name
	}
	d.cfg.Events.Emit(e)
}

// userFrame encodes {"type":typ,"room":R,"user":U,"userCount":N}.
func userFrame(typ, room string, m *routing.Member, count int) *routing.Frame {
	f := routing.NewText()
	f.AppendStr(`{"type":"`)
	f.AppendStr(typ)
	f.AppendStr(`","room":`)
	f.SetBuf(codec.AppendString(f.Buf(), room))
	f.AppendStr(`,"user":`)
	f.Append(m.Data.(*member).user...)
	f.AppendStr(`,"userCount":`)
	f.SetBuf(codec.AppendInt(f.Buf(), int64(count)))
	f.Append('}')
	return f.End()
}

func (s *session) message(req *request) {
	name, j := s.member(req)
	if j == nil {
		return
	}
	if len(req.Content) == 0 {
		s.fail("Invalid message: content is required")
		return
	}
	f := routing.NewText()
	f.AppendStr(`{"type":"message","room":`)
	f.SetBuf(codec.AppendString(f.Buf(), name))
	f.AppendStr(`,"user":`)
	f.Append(j.me.Data.(*member).user...)
	f.AppendStr(`,"content":`)
	f.Append(req.Content...)
	f.AppendStr(`,"timestamp":`)
	f.SetBuf(codec.AppendInt(f.Buf(), time.Now().UnixMilli()))
	f.Append('}')
	s.d.broker.Publish(j.room, f.End(), nil, false)
	f.Release()
}

// typing tells the other members; droppable, so it is shed first when a
// member falls behind.
func (s *session) typing(req *request) {
	name, j := s.member(req)
	if j == nil {
		return
	}
	f := routing.NewText()
	f.AppendStr(`{"type":"typing","room":`)
	f.SetBuf(codec.AppendString(f.Buf(), name))
	f.AppendStr(`,"user":`)
	f.Append(j.me.Data.(*member).user...)
	f.Append('}')
	s.d.broker.Publish(j.room, f.End(), s.c, true)
	f.Release()
}

func (s *session) fail(text string) { msg.SendError(s.c, text) }

// ErrorFrame implements dialect.ErrorReplier.
func (*Dialect) ErrorFrame(text string) *routing.Frame { return msg.ErrorFrame(text) }

const base36 = "0123456789abcdefghijklmnopqrstuvwxyz"

// newClientID returns the connection id in base 36 followed by 8 random
// base-36 characters: unique in the process (the id part), unguessable
// and unlikely to repeat across processes (the random part).
func newClientID(connID uint64) string {
	var r [8]byte
	_, _ = rand.Read(r[:])
	b := strconv.AppendUint(make([]byte, 0, 21), connID, 36)
	for _, x := range r {
		b = append(b, base36[int(x)%len(base36)])
	}
	return string(b)
}
