// Package wsecho is the raw echo dialect: every message comes back exactly
// as it arrived, text as text and binary as binary, up to
// --max-message-size, with no welcome and no JSON. It is the conventional
// target of WebSocket conformance suites (Autobahn|Testsuite) and load
// tools. The seed's JSON echo is the echo dialect.
//
// Concurrency: a session touches only its own connection; there is no
// shared state. An echo costs one pooled frame and no allocation.
package wsecho

import (
	"time"

	"partyline/codec"
	"partyline/dialect"
	"partyline/routing"
)

// Name is the dialect's name: path /wsecho, or --listen ADDR=wsecho.
const Name = "wsecho"

// Dialect is the raw echo dialect; one per server.
type Dialect struct{}

// New returns the dialect.
func New() *Dialect { return &Dialect{} }

func (*Dialect) Name() string                  { return Name }
func (*Dialect) Accept(*dialect.Request) error { return nil }

// Open starts a session; nothing is sent until the client speaks.
func (*Dialect) Open(c dialect.Conn) dialect.Session { return session{c} }

type session struct{ c dialect.Conn }

// OnMessage sends the message back as one frame of the same type. A text
// message was validated as UTF-8 by the codec, so the echo is valid too.
func (s session) OnMessage(kind codec.Kind, payload []byte) {
	f := routing.NewMessage(kind == codec.KindBinary, payload)
	s.c.Send(f, false)
	f.Release()
}

func (session) OnTimer(time.Time) {}
func (session) OnClose()          {}
