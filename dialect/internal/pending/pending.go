// Package pending helps a session run blocking cluster work (a key-value
// update, a confirmed subscription) off its event loop and finish on the
// loop, keeping the connection's message order: while an operation is in
// flight the session's later messages wait in a bounded Gate.
package pending

import (
	"sync"

	"partyline/codec"
)

// Op is one operation in flight. The worker calls Finish when its shared
// changes are made; the session's OnClose calls Cancel. Exactly one of
// them learns that the changes must be undone.
type Op struct {
	mu        sync.Mutex // guards the following
	done      bool
	cancelled bool
	undo      func()
}

// Finish records that the worker is done; undo (may be nil) reverts its
// changes. It returns false when the session closed meanwhile: the caller
// must run undo itself and must not Conn.Do the follow-up.
func (o *Op) Finish(undo func()) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.cancelled {
		return false
	}
	o.done, o.undo = true, undo
	return true
}

// Cancel is called by OnClose while the op is in flight. It returns the
// undo to run (off the loop) when the worker had finished (its follow-up
// will never run), or nil when the worker will see the cancellation.
func (o *Op) Cancel() func() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.cancelled = true
	if o.done {
		return o.undo
	}
	return nil
}

// MaxHeld and MaxHeldBytes bound what a Gate holds: at most MaxHeld
// messages of MaxHeldBytes together. The session closes a connection that
// sends more while an operation is in flight (an operation takes a round
// trip to NATS: a well-behaved client sends a few messages meanwhile).
const (
	MaxHeld      = 256
	MaxHeldBytes = 1 << 20
)

type held struct {
	kind    codec.Kind
	payload []byte
}

// Gate queues a session's messages while an operation is in flight. Loop
// only.
type Gate struct {
	busy  bool
	bytes int // payload bytes in q
	q     []held
}

// Busy reports whether an operation is in flight.
func (g *Gate) Busy() bool { return g.busy }

// Close marks an operation in flight.
func (g *Gate) Close() { g.busy = true }

// Hold keeps a copy of a message that arrived while busy; false when the
// gate is full (MaxHeld messages, or MaxHeldBytes with this one).
func (g *Gate) Hold(kind codec.Kind, payload []byte) bool {
	if len(g.q) >= MaxHeld || g.bytes+len(payload) > MaxHeldBytes {
		return false
	}
	g.bytes += len(payload)
	g.q = append(g.q, held{kind: kind, payload: append([]byte(nil), payload...)})
	return true
}

// Closer is the part of dialect.Conn that Defer needs.
type Closer interface {
	Close(code uint16, reason string)
}

// Defer is the first step of a gated session's OnMessage: while an
// operation is in flight it holds the message, or closes c with 1008 and
// why when the gate is full, and reports true (the message is taken care
// of); otherwise it reports false and the session handles the message.
func (g *Gate) Defer(c Closer, kind codec.Kind, payload []byte, why string) bool {
	if !g.busy {
		return false
	}
	if !g.Hold(kind, payload) {
		c.Close(1008, why)
	}
	return true
}

// Open ends the operation and replays the held messages through fn until
// one of them starts another operation (the rest stay held).
func (g *Gate) Open(fn func(kind codec.Kind, payload []byte)) {
	g.busy = false
	for len(g.q) > 0 && !g.busy {
		h := g.q[0]
		g.q[0] = held{}
		g.q = g.q[1:]
		g.bytes -= len(h.payload)
		fn(h.kind, h.payload)
	}
	if len(g.q) == 0 {
		g.q = nil
	}
}
