// Package dialect defines the seam between the engine (package server) and
// the wire dialects (one sub-package each): a Dialect accepts handshakes and
// opens a Session per connection; a Session receives that connection's
// messages and timer; Conn is what a Session may do with its connection.
//
// Concurrency rules: Accept, Open and every Session method run on the
// connection's event loop, one at a time per connection, and must never
// block (no disk, no network, no waiting on locks held across I/O). Work
// that blocks goes to a bounded worker pool and comes back through
// Conn.Do. A payload passed to OnMessage is valid only during the call.
package dialect

import (
	"net/http"
	"time"

	"partyline/codec"
	"partyline/routing"
)

// Request is what the handshake carried. Its strings are copies that stay
// valid for the connection's life.
type Request struct {
	Path          string // URL path, as sent
	Param         string // the path below the dialect prefix (channel name), URL-decoded
	RawQuery      string
	Origin        string
	Authorization string // the Authorization header, if any
	UserAgent     string // the User-Agent header, if any
	Cookie        string // the Cookie header, if any (several are joined with "; ")
	RemoteAddr    string
	// Accepted is the value a deferred Accept check returned (DeferValue),
	// set before Open; nil otherwise.
	Accepted any
}

// Conn is a connection as a Session sees it.
type Conn interface {
	routing.Sender

	// ID is unique among this process's connections.
	ID() uint64
	// Request is the handshake. Event loop or any goroutine: read-only.
	Request() *Request
	// SendText queues a copy of payload as one text frame. Any goroutine.
	SendText(payload []byte)
	// Close sends a close frame with code and reason, flushes what is queued
	// before it and closes the socket. Any goroutine; idempotent.
	Close(code uint16, reason string)
	// SetTimer asks for OnTimer at t (zero: cancel). The connection has one
	// timer shared with the engine's keepalive. Event loop only.
	SetTimer(t time.Time)
	// Do runs fn on the connection's event loop (after the current callback
	// if called from it), unless the connection has closed. Any goroutine.
	Do(fn func())
}

// Session is one connection's dialect state.
type Session interface {
	// OnMessage handles one complete message (KindText or KindBinary).
	OnMessage(kind codec.Kind, payload []byte)
	// OnTimer fires at the time last given to Conn.SetTimer.
	OnTimer(now time.Time)
	// OnClose runs once when the connection is gone.
	OnClose()
}

// Dialect is one wire protocol.
type Dialect interface {
	// Name is the dialect's name: the path prefix "/"+Name and the value in
	// --listen ADDR=NAME.
	Name() string
	// Accept checks a handshake before the upgrade. A non-nil error refuses
	// it with the error's HTTP status (see Refusal). Event loop; must not
	// block.
	Accept(req *Request) error
	// Open starts the session of an accepted connection; the returned
	// Session receives every later event.
	Open(c Conn) Session
}

// Param tells the engine that a dialect takes a path parameter: with a
// prefix, "/name/PARAM"; on a listener bound to the dialect, the whole path.
type Param interface {
	TakesParam() bool
}

// HTTPRoutes is implemented by dialects that serve HTTP endpoints on the
// HTTP listener. api wraps a handler with the API-key check.
type HTTPRoutes interface {
	Routes(mux Mux, api func(http.Handler) http.Handler)
}

// Mux is where HTTPRoutes mounts its handlers (an *http.ServeMux, or the
// HTTP listener's table of routes, which also lists them for the OpenAPI
// check): patterns as http.ServeMux reads them ("POST /api/notify").
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// HTTPError answers an HTTP request with status and {"error": msg}, as
// every endpoint of the HTTP listener does.
func HTTPError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b := codec.AppendString([]byte(`{"error":`), msg)
	_, _ = w.Write(append(b, "}\n"...))
}

// Stats is implemented by dialects that report gauges for /metrics.
type Stats interface {
	Rooms() int64
}

// Healther is implemented by dialects whose service can be degraded (a
// store that cannot write): /healthz lists every non-nil error under its
// component name and reports the status "degraded". Any goroutine; must
// not block.
type Healther interface {
	Health() (component string, err error)
}

// Refusal is a handshake refusal with an HTTP status.
type Refusal struct {
	Status int
	Reason string
}

func (r *Refusal) Error() string { return r.Reason }

// Refuse returns a *Refusal.
func Refuse(status int, reason string) error { return &Refusal{Status: status, Reason: reason} }

// Deferred is returned by Accept when the decision needs blocking work
// (verifying a token, asking a store): the engine runs Check on its bounded
// worker pool, off the event loop, and finishes the handshake with Check's
// result: a nil error accepts and the value becomes Request.Accepted (what
// the check learnt, such as verified claims, for the Session); a *Refusal
// refuses with its status. Frames the client sends meanwhile wait in the
// connection's buffer.
type Deferred struct {
	Check func() (any, error)
}

func (d *Deferred) Error() string { return "handshake decision deferred" }

// Defer returns a *Deferred for a check that only decides.
func Defer(check func() error) error {
	return &Deferred{Check: func() (any, error) { return nil, check() }}
}

// DeferValue returns a *Deferred for a check that also hands a value to the
// session (as Request.Accepted).
func DeferValue(check func() (any, error)) error { return &Deferred{Check: check} }

// ErrorReplier is implemented by dialects whose error replies the engine
// may send on a session's behalf: ErrorFrame returns msg as one error
// reply in the dialect's format ({"type":"error","message":msg} and the
// like), encoded. The engine builds the frames it needs once, at start
// (RateLimitMessage for a message dropped by the inbound rate limit), and
// sends the same frame to every connection. A dialect without it gets no
// such reply, only the close when a flood persists.
type ErrorReplier interface {
	ErrorFrame(msg string) *routing.Frame
}

// Rates are per-connection inbound limits (a zero rate is off).
type Rates struct {
	MessagesPerSecond float64
	MessageBurst      int // 0: twice the rate
	BytesPerSecond    int64
}

// InboundRates is implemented by dialects whose traffic needs other
// per-connection inbound limits than the server's (--max-messages-per-second,
// --message-burst, --max-bytes-per-second): InboundRates gets the
// server's and returns the dialect's. Called once, at start.
type InboundRates interface {
	InboundRates(server Rates) Rates
}

// PlainHTTP is implemented by dialects that answer plain HTTP on a
// WebSocket listener bound to them (--listen ADDR=NAME), as the servers
// they follow do on their one port. Event loop; must not block.
type PlainHTTP interface {
	// ServePlain returns a complete HTTP/1.1 response (with Connection:
	// close) for a request to path, or nil to leave it to the engine.
	// It is asked twice: first for every request, upgrades included
	// (fallback false), then, with fallback true, for a request that is no
	// WebSocket upgrade, which the engine would otherwise refuse with 426.
	ServePlain(path string, fallback bool) []byte
}

// PlainHTTPDeferred is implemented by a PlainHTTP dialect whose answer to
// some GET requests needs blocking work (a cluster lookup). PlainWork
// returns that work for path, or nil when ServePlain answers at once; the
// engine runs it off the event loop (bounded, like deferred Accept
// checks) and writes what it returns, a complete response as ServePlain's.
type PlainHTTPDeferred interface {
	PlainWork(path string) func() []byte
}

// Lingerer is implemented by sessions that a graceful shutdown should leave
// open while they report true (a room that keeps serving while the server
// drains); the end of the drain window closes them all the same. Event loop.
type Lingerer interface {
	Lingers() bool
}
