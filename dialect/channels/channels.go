// Package channels is the channel chat of seed 001 (ws-chat-server): the
// URL path names the channel, the server sends heartbeats that clients
// answer, a connection claims a user name per channel and may post once
// that name is authenticated. See docs/protocols.md "channels".
//
// Concurrency: Session methods run on the connection's event loop. A
// channel is a routing.Room (lock-free fan-out); the names claimed in it
// live in the room's Ext state under its own mutex, so two connections on
// different loops claiming one name get exactly one success. Every timing
// rule (heartbeat, authentication delay, heartbeat timeout) runs on the
// connection's single timer (Conn.SetTimer): no goroutine and no extra
// timer per connection. A claim is decided by the backplane's names
// (shared.go) on a worker and answered on the loop (Conn.Do); the
// session's later messages wait meanwhile.
package channels

import (
	"sync"
	"time"
	"unicode/utf8"

	"github.com/bytedance/sonic"

	"partyline/backplane"
	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/msg"
	"partyline/dialect/internal/pending"
	"partyline/routing"
)

// Name and user-name limits, in bytes.
const (
	MaxChannel = 64
	MaxUser    = 32
)

// Dialect is the channels dialect; one per server.
type Dialect struct {
	cfg   Config
	hub   *routing.Hub
	bp    backplane.Node
	bus   backplane.Bus
	names backplane.Names
}

// New returns the dialect on a single-node backplane (UseBackplane
// changes it). cfg must be valid.
func New(cfg Config) *Dialect {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	d := &Dialect{cfg: cfg, hub: routing.NewHub()}
	d.UseBackplane(backplane.NewLocal("", nil, 0))
	return d
}

func (d *Dialect) Name() string { return "channels" }

// TakesParam implements dialect.Param: the channel name follows the prefix
// (or is the whole path on a listener bound to channels).
func (d *Dialect) TakesParam() bool { return true }

// Rooms is the number of non-empty channels.
func (d *Dialect) Rooms() int64 { return d.hub.Rooms() }

// Hub exposes the channels to tests.
func (d *Dialect) Hub() *routing.Hub { return d.hub }

// Accept refuses a missing, too long or non-UTF-8 channel name with 400.
func (d *Dialect) Accept(req *dialect.Request) error {
	switch n := req.Param; {
	case n == "":
		return dialect.Refuse(400, "missing channel name: connect to /channels/{name}")
	case len(n) > MaxChannel:
		return dialect.Refuse(400, "channel name too long: at most 64 bytes")
	case !utf8.ValidString(n):
		return dialect.Refuse(400, "channel name is not valid UTF-8")
	}
	return nil
}

// channel is the dialect state of a channel room.
type channel struct {
	mu    sync.Mutex          // guards names
	names map[string]*session // claimed user name -> holder
}

// Static frames, encoded once; the package keeps a reference forever.
var (
	beatTrue     = routing.NewTextFrom([]byte(`{"type":"heartbeat","authenticated":"true"}`))
	beatFalse    = routing.NewTextFrom([]byte(`{"type":"heartbeat","authenticated":"false"}`))
	identityOK   = routing.NewTextFrom([]byte(`{"type":"identity","success":"true"}`))
	identityFail = routing.NewTextFrom([]byte(`{"type":"identity","success":"false"}`))
	notAuthed    = routing.NewTextFrom([]byte(`{"type":"error","message":"not authenticated"}`))
)

type session struct {
	d    *Dialect
	c    dialect.Conn
	room *routing.Room
	me   *routing.Member
	ch   *channel

	// identity: name is reserved in ch.names while non-empty
	name     string
	quoted   []byte    // name as a JSON string
	authed   bool      // the name is authenticated
	authAt   time.Time // when the name becomes authenticated (zero: not pending)
	lastBeat time.Time // last heartbeat reply or successful claim (start: the connection's)
	nextBeat time.Time // next heartbeat to send

	// the claim in flight (shared.go)
	gate pending.Gate // holds messages while a claim is in flight
	op   *pending.Op  // nil: none
	want string       // its name (reserved in ch.names)
	rev  uint64       // the names' revision of the held name's claim
}

// Open joins the channel and starts the heartbeat.
func (d *Dialect) Open(c dialect.Conn) dialect.Session {
	s := &session{d: d, c: c}
	name := c.Request().Param
	s.me = &routing.Member{ID: itoa(c.ID()), Conn: c}
	for {
		r := d.hub.GetOrCreate(name)
		_, err := r.Join(s.me, nil, func([]*routing.Member) {
			if r.Ext() == nil {
				r.SetExt(&channel{names: map[string]*session{}})
			}
			// Queued before the joiner is visible to fan-out: first on the wire.
			f := routing.NewText()
			f.AppendStr(`{"type":"connection","id":`)
			f.SetBuf(codec.AppendString(f.Buf(), name))
			f.Append('}')
			c.Send(f.End(), false)
			f.Release()
		})
		if err == routing.ErrRoomGone {
			continue // raced with the channel's deletion
		}
		s.room, s.ch = r, r.Ext().(*channel)
		break
	}
	now := d.cfg.Now()
	s.lastBeat, s.nextBeat = now, now.Add(d.cfg.Heartbeat)
	s.arm()
	return s
}

// request is every field a channels message may carry, undecoded.
type request struct {
	Type sonic.NoCopyRawMessage `json:"type"`
	User sonic.NoCopyRawMessage `json:"user"`
	Text sonic.NoCopyRawMessage `json:"text"`
}

var reqs = msg.Reader[request]{
	Binary:    "binary frames are not supported: send JSON text",
	NotObject: "message must be a JSON object",
	Invalid:   "invalid JSON",
}

func (s *session) OnMessage(kind codec.Kind, payload []byte) {
	if s.gate.Defer(s.c, kind, payload, "too many messages while a name claim is in progress") {
		return
	}
	req := reqs.Read(kind, payload, s.fail)
	if req == nil {
		return
	}
	defer reqs.Done(req)
	typ, ok := codec.Str(req.Type)
	if !ok {
		s.fail("missing or invalid type: heartbeat, identity or message")
		return
	}
	now := s.d.cfg.Now()
	s.check(now) // the timer may be up to a tick late: apply due rules first
	switch typ {
	case "heartbeat":
		s.lastBeat = now
	case "identity":
		s.identity(req.User)
	case "message":
		s.message(req.Text, now)
	default:
		s.fail("unknown type: " + typ)
	}
}

// OnTimer applies the timing rules, sends a heartbeat when one is due and
// re-arms the timer for the next event.
func (s *session) OnTimer(now time.Time) {
	s.check(now)
	if !now.Before(s.nextBeat) {
		if s.authed {
			s.c.Send(beatTrue, false)
		} else {
			s.c.Send(beatFalse, false)
		}
		s.nextBeat = s.nextBeat.Add(s.d.cfg.Heartbeat)
		if !s.nextBeat.After(now) { // the loop fell behind: do not burst
			s.nextBeat = now.Add(s.d.cfg.Heartbeat)
		}
	}
	s.arm()
}

func (s *session) OnClose() {
	s.cancel()
	s.release()
	s.room.Leave(s.me)
	s.room, s.ch = nil, nil
}

// check drops an identity whose connection stopped answering heartbeats
// and authenticates one whose delay has passed.
func (s *session) check(now time.Time) {
	if s.name == "" {
		return
	}
	if now.Sub(s.lastBeat) >= s.d.cfg.HeartbeatTimeout {
		s.release()
		return
	}
	if !s.authed && !now.Before(s.authAt) {
		s.authed, s.authAt = true, time.Time{}
	}
}

// arm sets the connection's timer to the earliest pending event.
func (s *session) arm() {
	t := s.nextBeat
	if s.name != "" {
		if !s.authed && s.authAt.Before(t) {
			t = s.authAt
		}
		if dl := s.lastBeat.Add(s.d.cfg.HeartbeatTimeout); dl.Before(t) {
			t = dl
		}
	}
	s.c.SetTimer(t)
}

func (s *session) identity(raw []byte) {
	name, ok := codec.Str(raw)
	if !ok || name == "" || len(name) > MaxUser {
		s.c.Send(identityFail, false)
		return
	}
	if name == s.name { // already ours: nothing changes
		s.c.Send(identityOK, false)
		return
	}
	ch := s.ch
	ch.mu.Lock()
	if holder := ch.names[name]; holder != nil {
		ch.mu.Unlock()
		s.c.Send(identityFail, false)
		return
	}
	ch.names[name] = s // the backplane decides; the old name stays until then
	ch.mu.Unlock()
	s.claim(name)
}

// adopt makes name (reserved in the channel) the session's identity.
func (s *session) adopt(name string, now time.Time) {
	s.name, s.quoted = name, codec.AppendString(s.quoted[:0], name)
	s.authed, s.authAt = false, now.Add(s.d.cfg.AuthDelay)
	// The claim is itself a sign of life: the timeout counts from it (or
	// from a later heartbeat reply), so a client that resumes answering
	// and claims at once is not dropped for its earlier silence.
	s.lastBeat = now
	s.c.Send(identityOK, false)
	s.arm()
}

// release gives up the session's name (and with it authentication).
func (s *session) release() {
	if s.name == "" {
		return
	}
	s.d.unclaim(s.room.Name, s.name, s.rev) // first: the local reservation keeps others off until then
	s.ch.mu.Lock()
	if s.ch.names[s.name] == s {
		delete(s.ch.names, s.name)
	}
	s.ch.mu.Unlock()
	s.name, s.quoted = "", s.quoted[:0]
	s.authed, s.authAt = false, time.Time{}
}

func (s *session) message(raw []byte, now time.Time) {
	if !s.authed {
		s.c.Send(notAuthed, false)
		return
	}
	text, ok := codec.Str(raw)
	if !ok {
		s.fail("message text must be a string")
		return
	}
	f := routing.NewText()
	f.AppendStr(`{"type":"message","text":`)
	f.SetBuf(codec.AppendString(f.Buf(), text))
	f.AppendStr(`,"timestamp":`)
	f.SetBuf(codec.AppendInt(f.Buf(), now.Unix()))
	f.AppendStr(`,"user":`)
	f.Append(s.quoted...)
	f.Append('}')
	s.d.bus.Publish(s.room, f.End(), nil, false)
	f.Release()
}

func (s *session) fail(text string) { msg.SendError(s.c, text) }

// ErrorFrame implements dialect.ErrorReplier.
func (*Dialect) ErrorFrame(text string) *routing.Frame { return msg.ErrorFrame(text) }

func itoa(n uint64) string { return string(codec.AppendInt(nil, int64(n))) }
