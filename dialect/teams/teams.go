// Package teams is the two-team relay of seed 000: a connection registers
// as one of N teams with {"team":1}, then sends {"from":1,"to":2,
// "message":"hi"} to every connection of another team. See docs/protocols.md
// "teams".
//
// Concurrency: Session methods run on the connection's event loop. A team
// is a routing.Room named "1", "2", ... in the dialect's Hub (lock-free
// fan-out), counted in the backplane's census (shared.go: one code path
// for one node and a cluster). Each team has a mutex that orders its
// membership changes on this node with the census writes they cause, and
// another that orders the "Team N connected"/"disconnected" notices those
// writes decide, so the other teams see the notices in the order the
// changes happened. Neither is held across I/O. Work that waits for the
// backplane (a registration, a send to a team that seems gone) finishes
// on the loop (Conn.Do); the session's later messages wait meanwhile.
package teams

import (
	"strconv"
	"time"

	"github.com/bytedance/sonic"

	"partyline/backplane"
	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/msg"
	"partyline/dialect/internal/pending"
	"partyline/routing"
)

// Dialect is the teams dialect; one per server.
type Dialect struct {
	cfg    Config
	hub    *routing.Hub
	bp     backplane.Node
	bus    backplane.Bus
	census backplane.Census
	teams  []team // teams[i] is team i+1 (shared.go)
}

// New returns the dialect on a single-node backplane (UseBackplane
// changes it). cfg must be valid.
func New(cfg Config) *Dialect {
	d := &Dialect{cfg: cfg, hub: routing.NewHub(), teams: make([]team, cfg.Teams)}
	for i := range d.teams {
		d.teams[i].name = strconv.Itoa(i + 1)
	}
	d.UseBackplane(backplane.NewLocal("", nil, 0))
	return d
}

func (d *Dialect) Name() string                        { return "teams" }
func (d *Dialect) Accept(*dialect.Request) error       { return nil }
func (d *Dialect) Open(c dialect.Conn) dialect.Session { return &session{d: d, c: c} }

// Rooms is the number of teams with at least one connection.
func (d *Dialect) Rooms() int64 { return d.hub.Rooms() }

// Hub exposes the teams (rooms "1".."N") to tests.
func (d *Dialect) Hub() *routing.Hub { return d.hub }

// Error texts (docs/protocols.md fixes the first and the shape of the rest).
const (
	errNotRegistered = "Team not registered. Send registration message first"
	errInvalidJSON   = "Invalid JSON"
	errNotObject     = "Invalid message: expected a JSON object"
	errBinary        = "Invalid message: binary frames are not supported, send JSON text"
	errMissingFields = "Missing required fields: from, to and message (a string) are required"
)

type session struct {
	d    *Dialect
	c    dialect.Conn
	team int // 0 until registered
	room *routing.Room
	me   *routing.Member

	gate        pending.Gate // holds messages while the backplane is waited for
	registering int          // team of the registration in flight (0: none)
}

// request is every field a teams message may carry, undecoded.
type request struct {
	Team    sonic.NoCopyRawMessage `json:"team"`
	From    sonic.NoCopyRawMessage `json:"from"`
	To      sonic.NoCopyRawMessage `json:"to"`
	Message sonic.NoCopyRawMessage `json:"message"`
}

var reqs = msg.Reader[request]{Binary: errBinary, NotObject: errNotObject, Invalid: errInvalidJSON}

func (s *session) OnMessage(kind codec.Kind, payload []byte) {
	if s.gate.Defer(s.c, kind, payload, "too many messages while a registration is in progress") {
		return
	}
	req := reqs.Read(kind, payload, s.fail)
	if req == nil {
		return
	}
	defer reqs.Done(req)
	if present(req.Team) {
		s.register(req.Team)
		return
	}
	if s.team == 0 {
		s.reply("error", errNotRegistered)
		return
	}
	s.send(req)
}

func (s *session) OnTimer(time.Time) {}

func (s *session) OnClose() { s.leave() }

func (s *session) register(raw []byte) {
	if s.team != 0 {
		s.reply("error", "Team already registered as Team "+strconv.Itoa(s.team))
		return
	}
	team, ok := s.d.teamID(raw)
	if !ok {
		s.reply("error", "Invalid team ID: must be an integer from 1 to "+strconv.Itoa(s.d.cfg.Teams))
		return
	}
	s.join(team, &routing.Member{ID: strconv.FormatUint(s.c.ID(), 10), Conn: s.c})
}

func (s *session) send(req *request) {
	msg, ok := codec.Str(req.Message)
	if !present(req.From) || !present(req.To) || !ok {
		s.reply("error", errMissingFields)
		return
	}
	if from, ok := parseInt(req.From); !ok || from != s.team {
		s.reply("error", "Team ID mismatch: this connection is registered as Team "+strconv.Itoa(s.team))
		return
	}
	to, ok := s.d.teamID(req.To)
	if !ok {
		s.reply("error", "Invalid target team: to must be an integer from 1 to "+strconv.Itoa(s.d.cfg.Teams))
		return
	}
	target := s.d.teams[to-1].name
	f := routing.NewText()
	f.AppendStr(`{"type":"message","from":`)
	f.AppendStr(s.d.teams[s.team-1].name)
	f.AppendStr(`,"to":`)
	f.AppendStr(target)
	f.AppendStr(`,"message":`)
	f.SetBuf(codec.AppendString(f.Buf(), msg))
	f.Append('}')
	f.End()
	if !s.d.deliver(target, f, s.c) {
		s.check(target, f) // the census copy may lag: it answers
		f.Release()
		return
	}
	f.Release()
	s.answer(target, true)
}

// answer tells the sender whether its message reached team target.
func (s *session) answer(target string, delivered bool) {
	if delivered {
		s.reply("status", "Message delivered to Team "+target)
	} else {
		s.reply("error", "Team "+target+" is not connected")
	}
}

func (s *session) fail(text string) { s.reply("error", text) }

func (s *session) reply(typ, text string) {
	f := replyFrame(typ, text)
	s.c.Send(f, false)
	f.Release()
}

// replyFrame encodes {"type":typ,"data":text}; typ must need no escaping.
func replyFrame(typ, text string) *routing.Frame {
	f := routing.NewText()
	f.AppendStr(`{"type":"`)
	f.AppendStr(typ)
	f.AppendStr(`","data":`)
	f.SetBuf(codec.AppendString(f.Buf(), text))
	f.Append('}')
	return f.End()
}

// teamID parses a team id: a JSON integer in 1..Teams.
func (d *Dialect) teamID(raw []byte) (int, bool) {
	n, ok := parseInt(raw)
	if !ok || n < 1 || n > d.cfg.Teams {
		return 0, false
	}
	return n, true
}

func present(raw []byte) bool { return len(raw) > 0 && string(raw) != "null" }

// parseInt parses a non-negative JSON integer without sign, fraction or
// exponent (at most 9 digits).
func parseInt(raw []byte) (int, bool) {
	if len(raw) == 0 || len(raw) > 9 || (raw[0] == '0' && len(raw) > 1) {
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

// ErrorFrame implements dialect.ErrorReplier: {"type":"error","data":text}.
func (d *Dialect) ErrorFrame(text string) *routing.Frame { return replyFrame("error", text) }
