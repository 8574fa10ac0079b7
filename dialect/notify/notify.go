// Package notify is the NotificationServer example of seed 003: a
// connection registers for a user with {"type":"auth","userId":U}; the
// HTTP API pushes a notification to every connection of one user, or a
// broadcast to every /notify connection. See docs/protocols.md "echo, rooms,
// notify".
//
// Concurrency: Session methods run on the connection's event loop; the
// HTTP handlers (http.go) run on net/http goroutines and only publish
// frames, which is safe from any goroutine. A user's connections are a
// routing.Room named by the userId in the users Hub; every connection is
// also a member of one of allShards rooms of the all Hub (chosen by
// connection id, so that joins copy short member lists), which broadcasts
// reach. Both are counted in the backplane's censuses (shared.go: one code
// path for one node and a cluster), which the HTTP answers add up.
package notify

import (
	"strconv"
	"time"

	"github.com/bytedance/sonic"

	"partyline/backplane"
	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/msg"
	"partyline/routing"
)

// MaxUserID is the longest string userId, in bytes.
const MaxUserID = 256

// allShards is the number of rooms every connection is spread over in the
// all Hub; they are named by allNames.
const allShards = 64

var allNames = func() (n [allShards]string) {
	for i := range n {
		n[i] = strconv.Itoa(i)
	}
	return n
}()

// Dialect is the notify dialect; one per server.
type Dialect struct {
	cfg   Config
	users *routing.Hub // userId -> that user's connections
	all   *routing.Hub // allNames[id%allShards] -> every connection

	bp         backplane.Node
	bus        backplane.Bus    // the users' rooms
	userCensus backplane.Census // per user
	allCensus  backplane.Census // every connection, under allRoom
}

// New returns the dialect on a single-node backplane (UseBackplane
// changes it). cfg must be valid.
func New(cfg Config) *Dialect {
	d := &Dialect{cfg: cfg, users: routing.NewHub(), all: routing.NewHub()}
	d.UseBackplane(backplane.NewLocal("", nil, 0))
	return d
}

func (d *Dialect) Name() string                  { return "notify" }
func (d *Dialect) Accept(*dialect.Request) error { return nil }

// Rooms is the number of users with at least one connection.
func (d *Dialect) Rooms() int64 { return d.users.Rooms() }

// Users exposes the user index to tests.
func (d *Dialect) Users() *routing.Hub { return d.users }

type session struct {
	d     *Dialect
	c     dialect.Conn
	all   *routing.Room
	me    *routing.Member // this connection, in the all room and its user's room
	user  *routing.Room   // nil until authenticated
	key   string          // the user's key in the users Hub
	shown []byte          // the userId as the client gave it (JSON)
}

// Open registers the connection for broadcasts.
func (d *Dialect) Open(c dialect.Conn) dialect.Session {
	s := &session{d: d, c: c, me: &routing.Member{ID: strconv.FormatUint(c.ID(), 10), Conn: c}}
	s.all, _, _ = d.all.JoinOrCreate(allNames[c.ID()%allShards], s.me, nil, nil) // ids are unique: no error
	d.markAll()
	return s
}

// request is every field a notify message may carry, undecoded.
type request struct {
	Type   sonic.NoCopyRawMessage `json:"type"`
	UserID sonic.NoCopyRawMessage `json:"userId"`
}

var reqs = msg.Reader[request]{
	Binary:    "Invalid message: binary frames are not supported, send JSON text",
	NotObject: "Invalid message: expected a JSON object",
	Invalid:   "Invalid JSON",
}

func (s *session) OnMessage(kind codec.Kind, payload []byte) {
	req := reqs.Read(kind, payload, s.fail)
	if req == nil {
		return
	}
	defer reqs.Done(req)
	typ, ok := codec.Str(req.Type)
	switch {
	case !ok:
		s.fail(`Missing or invalid type: send {"type":"auth","userId":...}`)
	case typ == "auth":
		s.auth(req.UserID)
	default:
		s.fail("Unknown message type: " + typ)
	}
}

func (s *session) OnTimer(time.Time) {}

func (s *session) OnClose() {
	s.unregister()
	s.all.Leave(s.me)
	s.d.markAll()
}

func (s *session) auth(raw []byte) {
	key, ok := userKey(raw)
	if !ok {
		s.fail("Invalid userId: a non-empty string of at most " + strconv.Itoa(MaxUserID) + " bytes, or a number")
		return
	}
	if s.user == nil || key != s.key {
		s.unregister()
		r, _, err := s.d.users.JoinOrCreate(key, s.me, nil, nil)
		if err != nil { // ids are unique: cannot happen
			s.fail("Cannot register: " + err.Error())
			return
		}
		s.user, s.key, s.shown = r, key, append(s.shown[:0], raw...)
		s.d.markUser(key)
	}
	f := routing.NewText()
	f.AppendStr(`{"type":"authenticated","userId":`)
	f.Append(s.shown...)
	f.Append('}')
	s.c.Send(f.End(), false)
	f.Release()
}

func (s *session) unregister() {
	if s.user != nil {
		s.user.Leave(s.me)
		s.d.markUser(s.key)
		s.user, s.key = nil, ""
	}
}

func (s *session) fail(text string) { msg.SendError(s.c, text) }

// ErrorFrame implements dialect.ErrorReplier.
func (*Dialect) ErrorFrame(text string) *routing.Frame { return msg.ErrorFrame(text) }

// userKey maps a userId (a JSON string, or a JSON number for servers with
// numeric ids) to its key in the users Hub: 42 and "42" are one user.
func userKey(raw []byte) (string, bool) {
	if len(raw) == 0 {
		return "", false
	}
	if raw[0] == '"' {
		s, ok := codec.Str(raw)
		if !ok || s == "" || len(s) > MaxUserID {
			return "", false
		}
		return s, true
	}
	if (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') && len(raw) <= 64 {
		return string(raw), true // the decoder validated the number
	}
	return "", false
}
