//go:build !race

package codec

import (
	"strings"
	"testing"
)

// Once warm, decoding a compressed message allocates nothing: the inflater
// and the output buffer come from pools.
func TestDecoderInflateNoAlloc(t *testing.T) {
	frame := zf(true, true, 1, deflated(t, strings.Repeat(`{"type":"send","data":"hello"}`, 10)))
	buf := make([]byte, len(frame))
	d := Decoder{MaxMessage: 64 << 10, Deflate: true}
	ok := true
	allocs := testing.AllocsPerRun(1000, func() {
		copy(buf, frame)
		n, ev, err := d.Next(buf)
		ok = ok && err == nil && n == len(buf) && ev.Kind == KindText
		d.Release()
	})
	if !ok {
		t.Fatal("decoding failed")
	}
	if allocs != 0 {
		t.Fatalf("%v allocs per compressed message, want 0", allocs)
	}
}
