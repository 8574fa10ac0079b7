// Package teams is the two-team relay of seed 000: a connection registers
// as one of N teams with {"team":1}, then sends {"from":1,"to":2,
// "message":"hi"} to every connection of another team. See docs/protocols.md
// "teams".
//
// Concurrency: Session methods run on the connection's event loop. A team
// is a routing.Room named "1", "2", ... in the dialect's Hub (lock-free
// fan-out). Each team also has a mutex that orders its membership changes
// with the "Team N connected"/"disconnected" notices they cause, so the
// other teams see those notices in the order the changes happened. The
// mutex is held only while frames are queued (never across I/O).
package teams

import (
	"strconv"
	"sync"
	"time"

	"github.com/bytedance/sonic"

	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/msg"
	"partyline/routing"
)

// Dialect is the teams dialect; one per server.
type Dialect struct {
	cfg    Config
	hub    *routing.Hub
	broker routing.Broker
	names  []string     // names[i] is team i+1's room name
	mu     []sync.Mutex // mu[i] orders team i+1's first-join/last-leave notices
	cl     *clustered   // nil: single node (cluster.go)
}

// New returns the dialect with the in-process broker. cfg must be valid.
func New(cfg Config) *Dialect {
	d := &Dialect{cfg: cfg, hub: routing.NewHub(), broker: routing.LocalBroker{},
		names: make([]string, cfg.Teams), mu: make([]sync.Mutex, cfg.Teams)}
	for i := range d.names {
		d.names[i] = strconv.Itoa(i + 1)
	}
	return d
}

func (d *Dialect) Name() string                        { return "teams" }
func (d *Dialect) Accept(*dialect.Request) error       { return nil }
func (d *Dialect) Open(c dialect.Conn) dialect.Session { return &session{d: d, c: c} }

// Rooms is the number of teams with at least one connection.
func (d *Dialect) Rooms() int64 { return d.hub.Rooms() }

// Hub exposes the teams (rooms "1".."N") to tests and a cluster backplane.
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
	cs   clusterSession // cluster mode only (cluster.go)
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
	if s.d.cl != nil && s.cs.gate.Defer(s.c, kind, payload, "too many messages while a registration is in progress") {
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

func (s *session) OnClose() {
	if s.d.cl != nil {
		s.closeCluster()
	}
	if s.team == 0 {
		return
	}
	mu := &s.d.mu[s.team-1]
	mu.Lock()
	if removed, remaining := s.room.Leave(s.me); removed && remaining == 0 {
		if s.d.cl != nil {
			s.d.markTeam(s.team)
		} else {
			s.d.notice(s.team, " disconnected")
		}
	}
	mu.Unlock()
	s.team, s.room, s.me = 0, nil, nil
}

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
	m := &routing.Member{ID: strconv.FormatUint(s.c.ID(), 10), Conn: s.c}
	if s.d.cl != nil {
		s.registerCluster(team, m)
		return
	}
	mu := &s.d.mu[team-1]
	mu.Lock()
	defer mu.Unlock()
	first := false
	r, _, err := s.d.hub.JoinOrCreate(s.d.names[team-1], m, nil, func(_ *routing.Room, members []*routing.Member) {
		first = len(members) == 1
		s.reply("status", "Team "+s.d.names[team-1]+" registered successfully")
	})
	if err != nil { // connection ids are unique: cannot happen
		s.reply("error", "registration failed: "+err.Error())
		return
	}
	s.team, s.room, s.me = team, r, m
	if first {
		s.d.notice(team, " connected")
	}
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
	target := s.d.names[to-1]
	f := routing.NewText()
	f.AppendStr(`{"type":"message","from":`)
	f.AppendStr(s.d.names[s.team-1])
	f.AppendStr(`,"to":`)
	f.AppendStr(target)
	f.AppendStr(`,"message":`)
	f.SetBuf(codec.AppendString(f.Buf(), msg))
	f.Append('}')
	f.End()
	n := 0
	if s.d.cl != nil {
		if !s.d.deliverCluster(target, f, s.c) {
			s.checkCluster(target, f) // the census copy may lag: ask the bucket
			f.Release()
			return
		}
		n = 1
	} else if r := s.d.hub.Get(target); r != nil {
		n = s.d.broker.Publish(r, f, s.c, false)
	}
	f.Release()
	if n == 0 {
		s.reply("error", "Team "+target+" is not connected")
		return
	}
	s.reply("status", "Message delivered to Team "+target)
}

// notice tells every connection of the other teams "Team N<what>". The
// caller holds team's mutex.
func (d *Dialect) notice(team int, what string) {
	own := d.names[team-1]
	f := replyFrame("status", "Team "+own+what)
	d.hub.Range(func(r *routing.Room) bool {
		if r.Name != own {
			d.broker.Publish(r, f, nil, false)
		}
		return true
	})
	f.Release()
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
