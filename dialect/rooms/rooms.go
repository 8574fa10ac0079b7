// Package rooms is the ChatServer example of seed 003: every connection
// gets a server-generated clientId, joins any number of named rooms under
// a username, and posts messages and typing indicators to them. See
// docs/protocols.md "echo, rooms, notify".
//
// What crosses nodes goes through the backplane (UseBackplane): a room's
// traffic through its Bus, its size (userCount) through its Census. One
// code path serves both implementations. On a single node (the default,
// backplane.Local) the bus is the room's own fan-out and the census this
// process's counts, answered before the call returns: a join completes
// in the turn of the loop that read it, and userJoined/userLeft are sent
// under the room's lock with the room's size, to exactly the members of
// that moment. In a cluster (--nats) traffic reaches the room's members
// on every node and userCount is the room's size across the cluster; a
// join first makes this node hear the room (a confirmed subscription)
// and counts the joiner in the census (a key-value round trip), and only
// then replies "joined", so a member never misses traffic another node
// sends after its "joined" and a count read anywhere afterwards includes
// it; the session's later messages wait meanwhile (pending.Gate).
//
// Concurrency: Session methods run on the connection's event loop; the
// session's own set of rooms and its join in flight are loop-only. A room
// is a routing.Room (lock-free fan-out; joins and leaves under the room's
// lock); it is deleted when its last member leaves. Dialect.local (this
// node's members per room, joins in flight included) is guarded by
// Dialect.mu, which is taken last (after a room's lock and the census's).
package rooms

import (
	"crypto/rand"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bytedance/sonic"

	"partyline/backplane"
	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/msg"
	"partyline/dialect/internal/pending"
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
	// Events receives room and member events (webhooks); nil: none. The
	// server sets it on a single node only (each node's rooms are a part
	// of a cluster's).
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
	bus    backplane.Bus    // the rooms' traffic, to their members on every node
	census backplane.Census // the rooms' sizes on every node (userCount)

	mu    sync.Mutex     // guards local
	local map[string]int // room -> members on this node, joins in flight included
}

// New returns the dialect on a single node's backplane; cfg must be
// validated.
func New(cfg Config) *Dialect {
	d := &Dialect{cfg: cfg, hub: routing.NewHub(), local: map[string]int{}}
	d.UseBackplane(backplane.NewLocal("", nil, 0))
	return d
}

// UseBackplane shares the rooms through bp (a cluster's: cluster mode).
// Call before the server starts.
func (d *Dialect) UseBackplane(bp backplane.Node) {
	d.bus = bp.Bus("rooms", d.hub)
	d.bus.SetLost(d.ErrorFrame(backplane.LostText))
	d.census = bp.Census("rooms")
}

func (d *Dialect) Name() string                  { return "rooms" }
func (d *Dialect) Accept(*dialect.Request) error { return nil }

// Rooms is the number of non-empty rooms.
func (d *Dialect) Rooms() int64 { return d.hub.Rooms() }

// Hub exposes the rooms to tests.
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
	d       *Dialect
	c       dialect.Conn
	id      string             // clientId
	rooms   map[string]*joined // loop only
	gate    pending.Gate       // holds later messages while a join is in flight
	joining *joining           // the join in flight, nil if none
}

// joining is a join waiting for the backplane (Session.startJoin).
type joining struct {
	room string
	hold pending.Op // the bus's hold on the room (Ensure's release) until the join is done
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
	if s.gate.Defer(s.c, kind, payload, "too many messages while a join is in progress") {
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

// OnClose leaves every room, telling the remaining members; a join in
// flight no longer counts.
func (s *session) OnClose() {
	if j := s.joining; j != nil {
		s.joining = nil
		j.hold.Drop()
		s.d.addLocal(j.room, -1)
		s.d.mark(j.room, nil)
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
	s.startJoin(name, m)
}

// startJoin makes this node hear room name (Bus.Ensure) and counts the
// joiner in the census, and only then joins the local room (finishJoin).
// The session's later messages wait meanwhile. On a single node both
// answer at once and the join completes before startJoin returns.
func (s *session) startJoin(name string, m *routing.Member) {
	d := s.d
	j := &joining{room: name}
	s.joining = j
	s.gate.Close()
	d.addLocal(name, 1)
	pending.OnLoop(s.c.Do, func(then func(func())) {
		d.bus.Ensure(name, func(release func()) {
			if !j.hold.Finish(release) { // the session closed meanwhile
				release()
				return
			}
			d.mark(name, func(remote int) {
				then(func() { s.finishJoin(j, m, remote) })
			})
		})
	})
}

// finishJoin joins the local room, replies "joined" and announces
// userJoined with the room's size (remote: its members on other nodes),
// so that a member joining later anywhere never sees the announcement.
func (s *session) finishJoin(j *joining, m *routing.Member, remote int) {
	d, name := s.d, j.room
	s.joining = nil
	r, _, err := d.hub.JoinOrCreate(name, m, nil, func(r *routing.Room, members []*routing.Member) {
		s.sendJoined(name) // reaches the joiner ahead of any room traffic
		// Under the room's lock, to the members present before this join.
		f := userFrame("userJoined", name, m, remote+len(members))
		d.bus.Publish(r, f, s.c, false)
		f.Release()
		if len(members) == 1 { // the room is new: it is created with its first member
			d.emit(dialect.RoomCreated, name, nil)
		}
		d.emit(dialect.MemberJoined, name, m)
	})
	j.hold.Drop() // the room holds the bus's subscription from now on
	if err != nil {
		// clientIds are unique: cannot happen
		d.addLocal(name, -1)
		d.mark(name, nil)
		s.fail("Cannot join room " + name + ": " + err.Error())
	} else {
		if s.rooms == nil {
			s.rooms = map[string]*joined{}
		}
		s.rooms[r.Name] = &joined{room: r, me: m}
	}
	s.gate.Open(s.OnMessage)
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

// leave removes the session from j's room and tells the others: under
// the room's lock, the census is marked and, once it is written (at once
// on a single node: still under the lock), userLeft goes to the members
// that remain, with the room's size; nobody is told when nobody remains
// anywhere.
func (s *session) leave(j *joined) {
	d, name := s.d, j.room.Name
	j.room.LeaveThenAll(j.me, func(rest []*routing.Member) {
		d.emit(dialect.MemberLeft, name, j.me)
		if len(rest) == 0 { // the local room is deleted with its last member
			d.emit(dialect.RoomClosed, name, nil)
		}
		d.addLocal(name, -1)
		d.mark(name, func(remote int) {
			if remote+len(rest) == 0 {
				return
			}
			f := userFrame("userLeft", name, j.me, remote+len(rest))
			d.bus.Publish(j.room, f, nil, false)
			f.Release()
		})
	})
}

// addLocal counts delta members of room name on this node.
func (d *Dialect) addLocal(name string, delta int) {
	d.mu.Lock()
	if d.local[name] += delta; d.local[name] <= 0 {
		delete(d.local, name)
	}
	d.mu.Unlock()
}

// localCount is this node's members of room name, joins in flight
// included.
func (d *Dialect) localCount(name string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.local[name]
}

// mark writes this node's count of room name to the census and then
// calls done, if not nil, with the room's members on the other nodes as
// of that write (0 on a single node, where done runs before mark returns).
func (d *Dialect) mark(name string, done func(remote int)) {
	if done == nil {
		d.census.Mark(name, func() int { return d.localCount(name) }, nil)
		return
	}
	var own atomic.Int64 // the count this mark wrote; -1 while unwritten
	own.Store(-1)
	d.census.Mark(name, func() int {
		n := d.localCount(name)
		own.Store(int64(n))
		return n
	}, func(_, after int) {
		n := int(own.Load())
		if n < 0 { // written together with a later mark: its count is about now's
			n = d.localCount(name)
		}
		done(max(after-n, 0))
	})
}

// emit sends a webhook event (m: the member of a member event), under the
// room's lock so that a room's events go out in order.
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
	s.d.bus.Publish(j.room, f.End(), nil, false)
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
	s.d.bus.Publish(j.room, f.End(), s.c, true)
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
