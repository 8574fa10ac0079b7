// Package echo is the tutorial echo server of seed 003: every JSON message
// comes back wrapped as {"type":"echo","data":M}. See docs/protocols.md "echo,
// rooms, notify".
//
// Concurrency: a session touches only its own connection; there is no
// shared state.
package echo

import (
	"time"

	"github.com/bytedance/sonic"

	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/msg"
	"partyline/routing"
)

// Dialect is the echo dialect; one per server.
type Dialect struct{}

// New returns the dialect.
func New() *Dialect { return &Dialect{} }

func (*Dialect) Name() string                  { return "echo" }
func (*Dialect) Accept(*dialect.Request) error { return nil }

// Static replies, encoded once and never released (the package holds a
// reference for the life of the process).
var (
	welcome     = routing.NewTextFrom([]byte(`{"type":"welcome","message":"Connected to server"}`))
	invalidJSON = routing.NewTextFrom([]byte(`{"type":"error","message":"Invalid JSON"}`))
	binaryFrame = routing.NewTextFrom([]byte(`{"type":"error","message":"Invalid JSON: binary frames are not supported, send JSON text"}`))
)

// Open greets the connection.
func (*Dialect) Open(c dialect.Conn) dialect.Session {
	c.Send(welcome, false)
	return session{c}
}

type session struct{ c dialect.Conn }

// OnMessage echoes a JSON value as-is inside {"type":"echo","data":...}.
func (s session) OnMessage(kind codec.Kind, payload []byte) {
	if kind != codec.KindText {
		s.c.Send(binaryFrame, false)
		return
	}
	// Decoding into a raw message validates strictly (codec.ValidJSON lets
	// control characters inside strings through) and trims the value's
	// surrounding whitespace; the value itself is re-emitted byte for byte.
	var data sonic.NoCopyRawMessage
	if err := codec.JSONNoCopy.Unmarshal(payload, &data); err != nil {
		s.c.Send(invalidJSON, false)
		return
	}
	f := routing.NewText()
	f.AppendStr(`{"type":"echo","data":`)
	f.Append(data...)
	f.Append('}')
	s.c.Send(f.End(), false)
	f.Release()
}

func (session) OnTimer(time.Time) {}
func (session) OnClose()          {}

// ErrorFrame implements dialect.ErrorReplier: {"type":"error","message":text}.
func (*Dialect) ErrorFrame(text string) *routing.Frame { return msg.ErrorFrame(text) }
