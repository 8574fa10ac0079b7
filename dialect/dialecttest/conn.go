// Package dialecttest is a fake dialect.Conn for unit and fuzz tests of
// dialect sessions: it records every frame, close and timer a Session
// asks for, without sockets or event loops.
package dialecttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"partyline/codec"
	"partyline/dialect"
	"partyline/routing"
)

var nextID atomic.Uint64

// Conn records what a Session does with its connection. It is safe from
// any goroutine (Send may come from other sessions' fan-out).
type Conn struct {
	id  uint64
	req dialect.Request

	mu        sync.Mutex // guards the following
	frames    [][]byte   // payloads, in send order
	dropped   int        // frames sent as droppable (recorded too)
	closeCode uint16
	timer     time.Time
	tasks     []func()
}

var _ dialect.Conn = (*Conn)(nil)

// New returns a fake connection whose handshake carried req.
func New(req dialect.Request) *Conn {
	return &Conn{id: nextID.Add(1), req: req}
}

func (c *Conn) ID() uint64                  { return c.id }
func (c *Conn) Request() *dialect.Request   { return &c.req }
func (c *Conn) SendText(payload []byte)     { c.record(append([]byte(nil), payload...), false) }
func (c *Conn) Close(code uint16, _ string) { c.mu.Lock(); c.closeCode = code; c.mu.Unlock() }
func (c *Conn) SetTimer(t time.Time)        { c.mu.Lock(); c.timer = t; c.mu.Unlock() }

// Do queues fn; RunTasks runs what is queued (the fake has no loop).
func (c *Conn) Do(fn func()) { c.mu.Lock(); c.tasks = append(c.tasks, fn); c.mu.Unlock() }

// RunTasks runs the functions queued by Do.
func (c *Conn) RunTasks() {
	c.mu.Lock()
	t := c.tasks
	c.tasks = nil
	c.mu.Unlock()
	for _, fn := range t {
		fn()
	}
}

// Send implements routing.Sender: it records the frame's payload.
func (c *Conn) Send(f *routing.Frame, droppable bool) bool {
	b := f.Bytes()
	h, n, err := codec.ParseHeader(b)
	if err != nil || n == 0 || h.Op != codec.OpText || !h.Fin || h.Masked || int64(len(b)-n) != h.Length {
		panic(fmt.Sprintf("dialecttest: malformed server frame %q", b))
	}
	c.record(append([]byte(nil), b[n:]...), droppable)
	return true
}

func (c *Conn) record(p []byte, droppable bool) {
	c.mu.Lock()
	c.frames = append(c.frames, p)
	if droppable {
		c.dropped++
	}
	c.mu.Unlock()
}

// Frames returns the payloads sent so far and forgets them.
func (c *Conn) Frames() [][]byte {
	c.mu.Lock()
	f := c.frames
	c.frames = nil
	c.mu.Unlock()
	return f
}

// Droppable is how many frames were sent as droppable.
func (c *Conn) Droppable() int { c.mu.Lock(); defer c.mu.Unlock(); return c.dropped }

// Timer is the time last given to SetTimer.
func (c *Conn) Timer() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.timer }

// CloseCode is the code given to Close, 0 if never called.
func (c *Conn) CloseCode() uint16 { c.mu.Lock(); defer c.mu.Unlock(); return c.closeCode }

// Msgs decodes the payloads sent so far (and forgets them); it returns an
// error naming the first payload that is not a JSON object.
func (c *Conn) Msgs() ([]map[string]any, error) {
	var out []map[string]any
	for _, p := range c.Frames() {
		var m map[string]any
		if !json.Valid(p) {
			return out, fmt.Errorf("reply is not valid JSON: %q", p)
		}
		if err := json.Unmarshal(p, &m); err != nil {
			return out, fmt.Errorf("reply is not a JSON object: %q: %v", p, err)
		}
		out = append(out, m)
	}
	return out, nil
}

// Split cuts fuzz input into messages at each 0x00 byte (at most max).
func Split(data []byte, max int) [][]byte {
	var out [][]byte
	for len(out) < max-1 {
		i := bytes.IndexByte(data, 0)
		if i < 0 {
			break
		}
		out = append(out, data[:i])
		data = data[i+1:]
	}
	return append(out, data)
}

// Reply parses one recorded frame as a JSON object (numbers kept as
// json.Number) and fails the test if it is not one.
func Reply(t testing.TB, p []byte) map[string]any {
	t.Helper()
	if !json.Valid(p) {
		t.Fatalf("reply %q is not valid JSON", p)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("reply %q: %v", p, err)
	}
	return m
}
