package routing

import (
	"sync"
	"sync/atomic"

	"partyline/codec"
)

// Frame is one encoded WebSocket frame shared by every recipient: a
// broadcast is encoded once and the same bytes are written to each member.
// It is reference counted and returns to a pool after the last Release.
type Frame struct {
	buf   []byte
	off   int // frame starts at buf[off:]
	start int // len(buf) when Begin was called
	refs  atomic.Int32

	// The permessage-deflate variant, built once on first demand and then
	// shared by every recipient that negotiated compression (Deflated).
	zstate atomic.Uint32 // zNone, zBuilt or zPlain
	zmu    sync.Mutex    // serialises the build
	zbuf   []byte        // the compressed frame is zbuf[zoff:]
	zoff   int
}

// Deflate variant states.
const (
	zNone  uint32 = iota // not built yet
	zBuilt               // zbuf holds the compressed frame
	zPlain               // not compressible (or not a data frame): send Bytes
)

// poolKeep is the largest buffer a pooled frame keeps.
const poolKeep = 64 << 10

var framePool = sync.Pool{New: func() any { return &Frame{buf: make([]byte, 0, 256)} }}

// NewText starts a text frame with one reference held by the caller: append
// the JSON payload with Append*, then call End before sending.
func NewText() *Frame {
	f := framePool.Get().(*Frame)
	f.refs.Store(1)
	f.buf = codec.StartText(f.buf[:0])
	f.start, f.off = 0, 0
	return f
}

// NewTextFrom returns a finished text frame holding a copy of payload.
func NewTextFrom(payload []byte) *Frame {
	f := NewText()
	f.buf = append(f.buf, payload...)
	return f.End()
}

// NewTextExact returns a finished text frame of payload in a buffer of
// exactly its size, not a pooled one: for frames kept long (a room's
// history), where a pooled buffer's spare capacity would be held too.
func NewTextExact(payload []byte) *Frame {
	hs := codec.HeaderSize(len(payload))
	f := &Frame{buf: make([]byte, hs+len(payload))}
	codec.PutTextHeader(f.buf, len(payload))
	copy(f.buf[hs:], payload)
	f.refs.Store(1)
	return f
}

// compact returns f, or (for a frame whose pooled buffer is far larger
// than the frame) an exact-size copy, releasing f's reference: what history
// keeps costs about what it counts.
func (f *Frame) compact() *Frame {
	if cap(f.buf) <= 2*f.Len()+512 {
		return f
	}
	c := &Frame{buf: append(make([]byte, 0, f.Len()), f.Bytes()...)}
	c.refs.Store(1)
	f.Release()
	return c
}

// NewRaw returns a frame holding a copy of an already encoded frame b.
func NewRaw(b []byte) *Frame {
	f := framePool.Get().(*Frame)
	f.refs.Store(1)
	f.buf = append(f.buf[:0], b...)
	f.off = 0
	return f
}

// NewMessage returns a finished, unfragmented data frame holding a copy of
// payload: a text frame, or a binary one when binary is set. The caller
// holds one reference.
func NewMessage(binary bool, payload []byte) *Frame {
	op := codec.OpText
	if binary {
		op = codec.OpBinary
	}
	f := framePool.Get().(*Frame)
	f.refs.Store(1)
	f.buf = codec.AppendFrame(f.buf[:0], true, op, payload)
	f.off = 0
	return f
}

// Buf returns the payload under construction; set it back with SetBuf.
// Typical use: f.SetBuf(codec.AppendString(f.Buf(), s)).
func (f *Frame) Buf() []byte { return f.buf }

// SetBuf replaces the payload buffer after an append.
func (f *Frame) SetBuf(b []byte) { f.buf = b }

// Append appends raw bytes to the payload under construction.
func (f *Frame) Append(b ...byte) { f.buf = append(f.buf, b...) }

// AppendStr appends a raw (already JSON) string to the payload.
func (f *Frame) AppendStr(s string) { f.buf = append(f.buf, s...) }

// PayloadLen is the length of the payload appended so far.
func (f *Frame) PayloadLen() int { return len(f.buf) - f.start - 10 }

// End writes the frame header; the frame is immutable afterwards.
func (f *Frame) End() *Frame {
	whole := codec.FinishText(f.buf, f.start)
	f.off = len(f.buf) - len(whole)
	return f
}

// Bytes returns the encoded frame. Valid while the caller holds a reference.
func (f *Frame) Bytes() []byte { return f.buf[f.off:] }

// Payload returns the frame's payload (Bytes without the header). Valid
// while the caller holds a reference.
func (f *Frame) Payload() []byte {
	b := f.buf[f.off:]
	switch b[1] & 0x7f {
	case 126:
		return b[4:]
	case 127:
		return b[10:]
	}
	return b[2:]
}

// Len is the encoded frame's size in bytes.
func (f *Frame) Len() int { return len(f.buf) - f.off }

// Deflated returns f compressed as a permessage-deflate message without
// context takeover (RFC 7692; RSV1 set), or nil when f should go as it is:
// a payload shorter than minSize, not a whole data frame, or one that
// compression does not shrink. The compressed frame is built once, by the
// first caller, and the same bytes serve every later one (a broadcast is
// compressed once for all its recipients); valid while the caller holds a
// reference. Any goroutine.
func (f *Frame) Deflated(minSize int) []byte {
	b := f.Bytes()
	if len(b) < 2 || (b[0] != 0x81 && b[0] != 0x82) || len(f.Payload()) < max(minSize, 1) {
		return nil
	}
	switch f.zstate.Load() {
	case zBuilt:
		return f.zbuf[f.zoff:]
	case zPlain:
		return nil
	}
	f.zmu.Lock()
	defer f.zmu.Unlock()
	if f.zstate.Load() == zNone {
		op := codec.OpText
		if b[0] == 0x82 {
			op = codec.OpBinary
		}
		var ok bool
		f.zbuf, f.zoff, ok = codec.AppendDeflatedFrame(f.zbuf, op, f.Payload())
		if ok {
			f.zstate.Store(zBuilt)
		} else {
			f.zstate.Store(zPlain)
		}
	}
	if f.zstate.Load() == zBuilt {
		return f.zbuf[f.zoff:]
	}
	return nil
}

// Retain adds a reference.
func (f *Frame) Retain() { f.refs.Add(1) }

// Release drops a reference; the last one returns the frame to the pool.
func (f *Frame) Release() {
	switch n := f.refs.Add(-1); {
	case n == 0:
		f.zstate.Store(zNone)
		if cap(f.zbuf) > poolKeep {
			f.zbuf = nil
		}
		if cap(f.buf) <= poolKeep {
			framePool.Put(f)
		}
	case n < 0:
		panic("routing: Frame released too often")
	}
}
