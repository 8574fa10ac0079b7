package presence

import (
	"time"

	"partyline/auth"
	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/pending"
	"partyline/internal/security"
)

// Close codes of the AUTH flow.
const (
	CloseAuthFailed  uint16 = 4401 // bad or expired token: get a new one before reconnecting
	CloseAuthTimeout uint16 = 4408 // no AUTH in time
)

// Handler is the dialect side of a Gate.
type Handler interface {
	// Dispatch handles one text message. It calls Gate.Auth for AUTH and
	// Gate.Go for work that touches the store. Loop only.
	Dispatch(payload []byte)
	// Authenticated runs once, when the connection first becomes user's.
	// Loop only.
	Authenticated(user string)
}

// Limits of the messages a connection may queue while its previous
// request is still being served.
const (
	maxQueued      = 256
	maxQueuedBytes = 1 << 20
)

// Gate is one connection's AUTH state and request queue, shared by the
// chat and presence sessions. A connection serves one request at a time:
// while a token is being verified, a store operation runs or the
// backplane is waited for, later messages wait in the queue (copied), so
// replies come back in request order and a message sent right behind AUTH
// is served as authenticated. An authentication is answered once the
// census counts the connection and the handler is ready (Readier); what
// the backplane answers at once (a single node's census and bus) goes on
// in the same turn of the loop. Every method runs on the connection's
// event loop.
type Gate struct {
	core *Core
	c    dialect.Conn
	h    Handler

	user     string    // "" until authenticated
	deadline time.Time // AUTH deadline, before authentication
	expires  time.Time // token expiry plus leeway; zero: none
	busy     bool      // a verification or store operation is in flight
	closing  bool      // we asked the engine to close
	queue    []queued
	qBytes   int
}

type queued struct {
	kind    codec.Kind
	payload []byte
}

// NewGate returns the gate of connection c.
func NewGate(core *Core, c dialect.Conn, h Handler) *Gate {
	return &Gate{core: core, c: c, h: h}
}

// User is the authenticated username, or "".
func (g *Gate) User() string { return g.user }

// Open starts the AUTH deadline and, if the handshake carried a token
// that the deferred check verified, authenticates at once.
func (g *Gate) Open() {
	g.deadline = time.Now().Add(g.core.cfg.AuthTimeout)
	g.c.SetTimer(g.deadline)
	if cl, ok := g.c.Request().Accepted.(auth.Claims); ok {
		g.authenticate(cl)
	}
}

// Message is the session's OnMessage.
func (g *Gate) Message(kind codec.Kind, payload []byte) {
	if g.closing {
		return
	}
	if g.busy {
		if len(g.queue) >= maxQueued || g.qBytes+len(payload) > maxQueuedBytes {
			Error(g.c, "Too many requests in flight: wait for replies before sending more")
			return
		}
		g.queue = append(g.queue, queued{kind, append([]byte(nil), payload...)})
		g.qBytes += len(payload)
		return
	}
	g.dispatch(kind, payload)
}

func (g *Gate) dispatch(kind codec.Kind, payload []byte) {
	if kind != codec.KindText {
		Error(g.c, "Binary frames are not supported: send JSON text")
		return
	}
	g.h.Dispatch(payload)
}

// Auth handles an AUTH message whose token field is raw.
func (g *Gate) Auth(raw []byte) {
	tok, ok := codec.Str(raw)
	if !ok || tok == "" {
		g.fail("Authentication failed: AUTH needs a token string")
		return
	}
	g.verify(tok)
}

func (g *Gate) verify(tok string) {
	g.busy = true
	c := g.c
	if !g.core.authPool.Verify(tok, func(cl auth.Claims, err error) {
		c.Do(func() { g.verified(cl, err) })
	}) {
		g.busy = false
		Error(g.c, "Server busy: send AUTH again")
	}
}

func (g *Gate) verified(cl auth.Claims, err error) {
	if g.closing {
		return
	}
	switch {
	case err != nil:
		g.fail("Authentication failed: " + err.Error())
		return
	case g.user == "":
		g.authenticate(cl)
		return // g.ready ends the request
	case cl.Username != g.user:
		Error(g.c, "Token is for "+cl.Username+" but this connection is authenticated as "+g.user+": AUTH ignored")
	default: // a refresh
		g.setExpiry(cl)
		Success(g.c, "Authenticated as "+g.user)
	}
	g.done()
}

// Readier is implemented by a Handler that may need time after
// authentication before the connection can receive what is sent to its
// user (in a cluster, this node must listen to the user's subject first).
type Readier interface {
	// AuthenticatedReady gets the connection ready for user and reports
	// true if ready must then be called once, from any goroutine (before
	// AuthenticatedReady returns, even), when it is; false means ready
	// at once. The gate then replies SUCCESS and calls Authenticated.
	// Loop only.
	AuthenticatedReady(user string, ready func()) bool
}

// authenticate makes the connection cl's user and starts the request
// that answers it: SUCCESS and the queued messages wait until the census
// counts the connection (counted), so that a presence watcher on any node
// can see the user online once the client is told, and until the handler
// is ready.
func (g *Gate) authenticate(cl auth.Claims) {
	g.user = cl.Username
	g.core.Registry.Connect(g.user)
	g.setExpiry(cl)
	g.busy = true
	user := g.user
	pending.OnLoop(g.c.Do, func(then func(func())) {
		g.core.counted(user, func() { then(g.counted) })
	})
}

// counted goes on with an authentication once the census has the
// connection: it lets the handler get ready (Readier), then g.ready ends
// the request.
func (g *Gate) counted() {
	if g.closing {
		return
	}
	if r, ok := g.h.(Readier); ok {
		waits := false
		pending.OnLoop(g.c.Do, func(then func(func())) {
			waits = r.AuthenticatedReady(g.user, func() { then(g.ready) })
		})
		if waits {
			return
		}
	}
	g.ready()
}

// ready ends an authentication: SUCCESS, then the handler's
// Authenticated, then the queued messages.
func (g *Gate) ready() {
	if !g.closing {
		Success(g.c, "Authenticated as "+g.user)
		g.h.Authenticated(g.user)
	}
	g.done()
}

func (g *Gate) setExpiry(cl auth.Claims) {
	g.expires = time.Time{}
	if !cl.Expires.IsZero() {
		g.expires = cl.Expires.Add(g.core.Verifier.Leeway())
	}
	g.c.SetTimer(g.expires)
}

// Timer is the session's OnTimer: the AUTH deadline or the token expiry.
func (g *Gate) Timer(now time.Time) {
	if g.closing {
		return
	}
	switch {
	case g.user == "" && !now.Before(g.deadline):
		Error(g.c, "Authentication timeout")
		g.close(CloseAuthTimeout, "authentication timeout")
	case g.user != "" && !g.expires.IsZero() && !now.Before(g.expires):
		Error(g.c, "Token expired: send AUTH with a new token before it expires")
		g.close(CloseAuthFailed, "token expired")
	case g.user == "":
		g.c.SetTimer(g.deadline)
	default:
		g.c.SetTimer(g.expires)
	}
}

// Closed is the session's OnClose.
func (g *Gate) Closed() {
	g.closing = true
	g.queue = nil
	if g.user != "" {
		g.core.Registry.Disconnect(g.user)
	}
}

func (g *Gate) fail(msg string) {
	r := g.c.Request()
	security.Record("auth_failed", "where", "AUTH", "path", r.Path, "remote", r.RemoteAddr, "err", msg)
	Error(g.c, msg)
	g.close(CloseAuthFailed, "authentication failed")
}

// Disconnect closes the connection normally (DISCONNECT).
func (g *Gate) Disconnect() { g.close(1000, "") }

func (g *Gate) close(code uint16, reason string) {
	g.closing = true
	g.queue, g.qBytes = nil, 0
	g.c.Close(code, reason)
}

// Go runs job on a store worker, then serves the queued messages: the
// connection's next request waits for job. job may send frames (Conn.Send
// is safe from any goroutine) but must not touch session state.
func (g *Gate) Go(job func()) { g.run(g.core.work.Go, job) }

// GoSynced is Go for a job that reads other nodes' connections: it runs
// once the registry's remote counts hold every connection counted
// anywhere before the call (Core.afterSync): on a single node at once, on
// the loop, in a cluster on a backplane worker.
func (g *Gate) GoSynced(job func()) { g.run(g.core.afterSync, job) }

// run is Go on the pool that start submits to; a job start runs before
// it returns ends the request in the same turn of the loop.
func (g *Gate) run(start func(func()) bool, job func()) {
	g.busy = true
	ok := false
	pending.OnLoop(g.c.Do, func(then func(func())) {
		ok = start(func() {
			job()
			then(g.done)
		})
	})
	if !ok {
		g.busy = false
		Error(g.c, "Server busy, try again")
	}
}

// done ends the request in flight and serves queued messages until one
// starts new work.
func (g *Gate) done() {
	g.busy = false
	for len(g.queue) > 0 && !g.busy && !g.closing {
		q := g.queue[0]
		g.queue[0] = queued{}
		g.queue = g.queue[1:]
		g.qBytes -= len(q.payload)
		g.dispatch(q.kind, q.payload)
	}
	if len(g.queue) == 0 {
		g.queue = nil
	}
}
