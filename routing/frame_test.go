package routing

import (
	"bytes"
	"fmt"
	"runtime/debug"
	"strings"
	"sync"
	"testing"

	"partyline/codec"
)

func TestFrameEncoding(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 1000, 0xffff, 0x10000, 200000} {
		p := []byte(strings.Repeat("a", n))
		for name, f := range map[string]*Frame{
			"NewText": func() *Frame {
				f := NewText()
				f.Append(p...)
				if f.PayloadLen() != n {
					t.Fatalf("PayloadLen = %d, want %d", f.PayloadLen(), n)
				}
				return f.End()
			}(),
			"NewTextFrom": NewTextFrom(p),
			"NewRaw":      NewRaw(codec.AppendFrame(nil, true, codec.OpText, p)),
		} {
			h, size, err := codec.ParseHeader(f.Bytes())
			if err != nil || size == 0 {
				t.Fatalf("%s(%d): header: %v", name, n, err)
			}
			if !h.Fin || h.Op != codec.OpText || h.Masked || h.Rsv != 0 || h.Length != int64(n) {
				t.Fatalf("%s(%d): header %+v", name, n, h)
			}
			if size != codec.HeaderSize(n) || f.Len() != size+n {
				t.Fatalf("%s(%d): header %d bytes, frame %d: not minimal", name, n, size, f.Len())
			}
			if !bytes.Equal(f.Bytes()[size:], p) {
				t.Fatalf("%s(%d): payload differs", name, n)
			}
			f.Release()
		}
	}
}

func TestFrameAppendHelpers(t *testing.T) {
	f := NewText()
	f.AppendStr(`{"s":`)
	f.SetBuf(codec.AppendString(f.Buf(), "a\"b"))
	f.Append(',', '"', 'n', '"', ':', '1', '}')
	f.End()
	defer f.Release()
	if got := string(payload(f)); got != `{"s":"a\"b","n":1}` {
		t.Fatalf("payload %s", got)
	}
}

func TestFrameCopiesInput(t *testing.T) {
	src := []byte("hello")
	a := NewTextFrom(src)
	raw := codec.AppendFrame(nil, true, codec.OpText, src)
	b := NewRaw(raw)
	src[0], raw[2] = 'J', 'J'
	if string(payload(a)) != "hello" || string(payload(b)) != "hello" {
		t.Fatalf("frames alias their input: %q %q", payload(a), payload(b))
	}
	a.Release()
	b.Release()
}

func TestFrameRefcount(t *testing.T) {
	f := NewTextFrom([]byte("x"))
	f.Retain()
	f.Retain()
	f.Release()
	f.Release()
	if string(payload(f)) != "x" { // one reference left: still valid
		t.Fatal("frame changed while referenced")
	}
	f.Release()
	defer func() {
		if recover() == nil {
			t.Fatal("releasing a frame once too often did not panic")
		}
	}()
	f.Release()
}

func TestFramePooledReuse(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1)) // a GC empties the pool
	reused := false
	for range 100 {
		f := NewTextFrom([]byte("one"))
		f.Release()
		g := NewText()
		if g == f {
			reused = true
			if g.refs.Load() != 1 || g.PayloadLen() != 0 {
				t.Fatalf("reused frame not reset: refs %d, payload %d", g.refs.Load(), g.PayloadLen())
			}
			g.AppendStr("two")
			g.End()
			if string(payload(g)) != "two" {
				t.Fatalf("reused frame holds %q", payload(g))
			}
		}
		g.Release()
		if reused {
			break
		}
	}
	if !reused {
		t.Fatal("a released frame never came back from the pool")
	}
	// A frame that grew beyond poolKeep is not kept.
	for range 100 {
		big := NewTextFrom(make([]byte, poolKeep+1))
		big.Release()
		g := NewText()
		if g == big {
			t.Fatal("a frame larger than poolKeep was pooled")
		}
		g.Release()
	}
}

func TestFrameBuildDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under the race detector")
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	id := []byte(`"player-1"`)
	if n := testing.AllocsPerRun(200, func() {
		f := NewText()
		f.AppendStr(`{"type":"message","from":`)
		f.Append(id...)
		f.AppendStr(`,"data":{"x":1}}`)
		f.End()
		f.Retain()
		f.Release()
		f.Release()
	}); n != 0 {
		t.Fatalf("building and releasing a pooled frame allocates %.1f times", n)
	}
}

func TestFrameDeflated(t *testing.T) {
	payload := []byte(strings.Repeat(`{"type":"message","data":"hello"}`, 20))
	f := NewTextFrom(payload)
	defer f.Release()
	z := f.Deflated(256)
	if z == nil {
		t.Fatal("no compressed variant of a repetitive 660-byte frame")
	}
	h, hs, err := codec.ParseHeader(z)
	if err != nil || !h.Fin || h.Rsv != 4 || h.Op != codec.OpText || int(h.Length) != len(z)-hs {
		t.Fatalf("compressed header %+v: %v", h, err)
	}
	if got, err := codec.Inflate(nil, z[hs:], 0); err != nil || !bytes.Equal(got, payload) {
		t.Fatalf("inflated %q: %v", got, err)
	}
	if z2 := f.Deflated(256); &z2[0] != &z[0] {
		t.Fatal("the variant was built twice")
	}
	if !bytes.Equal(f.Payload(), payload) {
		t.Fatal("the plain frame changed")
	}
	// Under the minimum size, control frames, incompressible payloads: nil.
	if f.Deflated(len(payload)+1) != nil {
		t.Fatal("compressed under the minimum size")
	}
	ping := NewRaw([]byte{0x89, 0})
	defer ping.Release()
	if ping.Deflated(0) != nil {
		t.Fatal("compressed a control frame")
	}
	noise := make([]byte, 300)
	for i := range noise {
		noise[i] = byte(i * 7919 >> 3)
	}
	bin := NewMessage(true, noise[:40])
	defer bin.Release()
	if bin.Deflated(0) != nil {
		t.Fatal("kept a compressed variant that is not smaller")
	}
	// A pooled frame reused for another payload does not keep the old variant.
	g := NewTextFrom(payload)
	g.Deflated(0)
	g.Release()
	h2 := NewTextFrom([]byte(strings.Repeat("other ", 100)))
	defer h2.Release()
	z3 := h2.Deflated(0)
	_, hs3, _ := codec.ParseHeader(z3)
	if got, _ := codec.Inflate(nil, z3[hs3:], 0); string(got) != strings.Repeat("other ", 100) {
		t.Fatalf("a reused frame's variant inflates to %.40q", got)
	}
}

// Many goroutines asking at once get one build and the same bytes.
func TestFrameDeflatedConcurrent(t *testing.T) {
	f := NewTextFrom([]byte(strings.Repeat("broadcast ", 100)))
	defer f.Release()
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Add(1)
		go func() { defer wg.Done(); got[i] = f.Deflated(256) }()
	}
	wg.Wait()
	for _, z := range got {
		if z == nil || &z[0] != &got[0][0] {
			t.Fatal("recipients got different compressed frames")
		}
	}
}

// The cost of compression per distinct message (the first Deflated call
// builds the variant) and per further recipient (a cached lookup).
func BenchmarkFrameDeflate(b *testing.B) {
	for _, n := range []int{300, 1000, 4000} {
		msg := []byte(`{"type":"message","from":"player-17","data":{"t":1763769600123456789,"i":12345,"s":678,"k":19,"p":"`)
		for len(msg) < n-3 {
			msg = append(msg, "move left jump x=12 y=40 "[len(msg)%25])
		}
		msg = append(msg, `"}}`...)
		b.Run(fmt.Sprintf("build/%dB", len(msg)), func(b *testing.B) {
			b.SetBytes(int64(len(msg)))
			for range b.N {
				f := NewTextFrom(msg)
				if f.Deflated(256) == nil {
					b.Fatal("not compressed")
				}
				f.Release()
			}
		})
		b.Run(fmt.Sprintf("cached/%dB", len(msg)), func(b *testing.B) {
			f := NewTextFrom(msg)
			f.Deflated(256)
			for range b.N {
				f.Deflated(256)
			}
			f.Release()
		})
	}
}
