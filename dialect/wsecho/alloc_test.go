//go:build !race

package wsecho

import (
	"testing"
	"time"

	"partyline/codec"
	"partyline/dialect"
	"partyline/routing"
)

// holdConn keeps the last frame sent and releases it at the next send, as
// the engine releases a frame once written.
type holdConn struct {
	last *routing.Frame
	n    int
}

func (c *holdConn) Send(f *routing.Frame, _ bool) bool {
	if c.last != nil {
		c.last.Release()
	}
	f.Retain()
	c.last, c.n = f, c.n+1
	return true
}
func (c *holdConn) ID() uint64                { return 1 }
func (c *holdConn) Request() *dialect.Request { return &dialect.Request{} }
func (c *holdConn) SendText([]byte)           {}
func (c *holdConn) Close(uint16, string)      {}
func (c *holdConn) SetTimer(time.Time)        {}
func (c *holdConn) Do(fn func())              { fn() }

// An echo allocates nothing: the frame comes from the pool and goes back.
func TestEchoAllocationFree(t *testing.T) {
	c := &holdConn{}
	s := New().Open(c)
	for _, tc := range []struct {
		kind codec.Kind
		n    int
	}{{codec.KindText, 20}, {codec.KindBinary, 200}, {codec.KindBinary, 4000}} {
		msg := make([]byte, tc.n)
		s.OnMessage(tc.kind, msg) // warm the pool for this size
		if a := testing.AllocsPerRun(500, func() { s.OnMessage(tc.kind, msg) }); a != 0 {
			t.Errorf("%d-byte echo allocates %.1f times", tc.n, a)
		}
	}
	if c.n == 0 || c.last.Payload() == nil {
		t.Fatal("nothing was sent")
	}
	b := c.last.Bytes()
	h, hs, err := codec.ParseHeader(b)
	if err != nil || h.Op != codec.OpBinary || !h.Fin || int(h.Length) != len(b)-hs || h.Length != 4000 {
		t.Fatalf("frame header %+v (%d bytes, err %v)", h, len(b), err)
	}
}
