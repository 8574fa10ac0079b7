// Package presence is the /presence dialect of seed 004 (online/offline
// updates for a user's contacts) and the layer it shares with /chat: the
// AUTH flow and request queue of a connection (Gate), the presence
// Registry, and Core, which owns the token verifier, the store and their
// worker pools. See docs/protocols.md "chat and presence" and docs/chat.md.
//
// Other nodes' connections (cluster mode) come through Core's backplane
// census; on a single node there are none and every wait for them answers
// at once, so the same code serves both.
//
// Concurrency: Session methods run on the connection's event loop and
// never block. Token verification runs on the auth pool, store reads and
// writes on Core's workers, waits for the census copy (a cluster's) on
// the backplane's workers, presence fan-out on the registry's notifier;
// results come back through Conn.Do or are sent with Conn.Send.
// Core.Health may be called from any goroutine and never blocks; Shutdown
// waits for the store at most Config.StoreCloseTimeout twice (queued
// work, then closing), whatever the disk does.
package presence

import (
	"strings"
	"time"

	"partyline/codec"
	"partyline/dialect"
	"partyline/routing"
)

// Dialect is /presence.
type Dialect struct {
	core *Core
}

// New returns the presence dialect on core.
func New(core *Core) *Dialect { return &Dialect{core: core} }

func (d *Dialect) Name() string                      { return "presence" }
func (d *Dialect) Accept(req *dialect.Request) error { return d.core.Accept(req) }
func (d *Dialect) Start() error                      { return d.core.Start() }
func (d *Dialect) Shutdown() error                   { return d.core.Shutdown() }

func (d *Dialect) Open(c dialect.Conn) dialect.Session {
	s := &session{core: d.core, c: c}
	s.g = NewGate(d.core, c, s)
	s.g.Open()
	return s
}

type session struct {
	core *Core
	c    dialect.Conn
	g    *Gate
	w    *Watcher // set once authenticated
}

func (s *session) OnMessage(kind codec.Kind, payload []byte) { s.g.Message(kind, payload) }
func (s *session) OnTimer(now time.Time)                     { s.g.Timer(now) }

func (s *session) OnClose() {
	if s.w != nil {
		s.core.Registry.Unwatch(s.w)
	}
	s.g.Closed()
}

// AuthenticatedReady implements Readier: the statuses of the user's
// contacts (Authenticated) wait until this node's census copy holds every
// connection counted anywhere before now (Core.afterSync: at once on a
// single node). With the workers busy it is ready at once.
func (s *session) AuthenticatedReady(_ string, ready func()) bool {
	return s.core.afterSync(ready)
}

func (s *session) Authenticated(user string) {
	w, ok := s.core.Registry.Watch(user, s.c, WatcherID(s.c.ID()))
	if !ok {
		Error(s.c, "Server busy: presence updates unavailable, reconnect later")
		return
	}
	s.w = w
}

func (s *session) Dispatch(payload []byte) {
	req := reqPool.Get().(*request)
	defer func() { *req = request{}; reqPool.Put(req) }()
	typ, bad := decode(payload, req)
	if bad != "" {
		Error(s.c, bad)
		return
	}
	if typ == "AUTH" {
		s.g.Auth(req.Token)
		return
	}
	if s.g.User() == "" {
		Error(s.c, "Not authenticated")
		return
	}
	switch typ {
	case "SUBSCRIBE_PRESENCE":
		names, bad := decodeNames(req.Usernames)
		switch {
		case bad != "":
			Error(s.c, bad)
		case s.w == nil:
			Error(s.c, "Server busy: presence updates unavailable, reconnect later")
		default:
			// The statuses wait until this node's census copy holds
			// every connection counted anywhere before now.
			for i := range names {
				names[i] = strings.Clone(names[i]) // may alias the payload
			}
			w := s.w
			s.g.GoSynced(func() { s.subscribe(w, names) })
		}
	case "DISCONNECT":
		s.g.Disconnect()
	default:
		Error(s.c, "Unknown message type: "+typ)
	}
}

// subscribe adds names to w's subscriptions and answers. Any goroutine.
func (s *session) subscribe(w *Watcher, names []string) {
	err := s.core.Registry.Subscribe(w, names, func() {
		Success(s.c, "Subscribed to "+itoa(len(names))+" users")
	})
	switch err {
	case ErrTooManySubscriptions:
		Error(s.c, "Too many subscriptions: at most "+itoa(s.core.Registry.maxSubs())+" names per connection")
	case ErrBusy:
		Error(s.c, "Server busy: try again later")
	}
}

func itoa(n int) string { return string(codec.AppendInt(nil, int64(n))) }

// ErrorFrame implements dialect.ErrorReplier: {"type":"ERROR","msg":text}.
func (d *Dialect) ErrorFrame(text string) *routing.Frame { return MsgFrame("ERROR", text) }
