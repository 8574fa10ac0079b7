package codec

import (
	"bytes"
	"compress/flate"
	"slices"
	"strings"
	"testing"
)

// zf is a masked client frame with RSV1 (compressed) set when rsv1.
func zf(fin, rsv1 bool, op byte, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	if rsv1 {
		b0 |= 0x40
	}
	return rawFrame(b0, payload, testMask)
}

func deflated(t testing.TB, s string) []byte {
	t.Helper()
	b, err := AppendDeflate(nil, []byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// bomb is 1 MiB of zeros compressed (about 1 KB), as a client would send it.
func bomb(t testing.TB) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestCompression)
	_, _ = w.Write(make([]byte, 1<<20))
	_ = w.Flush()
	b := buf.Bytes()
	return b[:len(b)-4] // the 00 00 ff ff tail is implied
}

func TestInflateRoundTrip(t *testing.T) {
	for _, n := range []int{1, 100, 256, 5000, 70000, 300000} {
		p := make([]byte, n)
		for i := range p {
			p[i] = "abcabcabdzz"[i%11] + byte(i/1000)
		}
		z, err := AppendDeflate([]byte("prefix"), p)
		if err != nil || !bytes.HasPrefix(z, []byte("prefix")) {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if bytes.HasSuffix(z, []byte{0, 0, 0xff, 0xff}) {
			t.Fatalf("%d bytes: the 00 00 ff ff tail was left on", n)
		}
		got, err := Inflate(nil, z[6:], 0)
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("%d bytes: inflated %d bytes, err %v", n, len(got), err)
		}
		if _, err := Inflate(nil, z[6:], n-1); n > 1 && err != ErrTooBig {
			t.Fatalf("%d bytes with a limit of %d: %v, want ErrTooBig", n, n-1, err)
		}
		if got, err := Inflate(nil, z[6:], n); err != nil || len(got) != n {
			t.Fatalf("%d bytes with a limit of %d: %d bytes, %v", n, n, len(got), err)
		}
	}
}

func TestInflateBounded(t *testing.T) {
	got, err := Inflate(nil, bomb(t), 64<<10)
	if err != ErrTooBig {
		t.Fatalf("zip bomb: %v, want ErrTooBig", err)
	}
	if len(got) > 64<<10+1 || cap(got) > 2*64<<10 {
		t.Fatalf("zip bomb: %d bytes inflated, buffer of %d, limit 64 KiB", len(got), cap(got))
	}
	for _, bad := range [][]byte{{0xff, 0xff, 0xff}, {0x07}, []byte("not deflate at all")} {
		if _, err := Inflate(nil, bad, 1000); err != ErrBadDeflate {
			t.Errorf("%x: %v, want ErrBadDeflate", bad, err)
		}
	}
}

func TestAppendDeflatedFrame(t *testing.T) {
	p := []byte(strings.Repeat(`{"type":"msg","data":"hello"}`, 20))
	buf, off, ok := AppendDeflatedFrame(nil, OpText, p)
	if !ok {
		t.Fatal("a repetitive payload did not shrink")
	}
	f := buf[off:]
	h, hs, err := ParseHeader(f)
	if err != nil || !h.Fin || h.Rsv != 4 || h.Op != OpText || h.Masked || int(h.Length) != len(f)-hs {
		t.Fatalf("header %+v, %d bytes: %v", h, len(f), err)
	}
	if got, err := Inflate(nil, f[hs:], 0); err != nil || !bytes.Equal(got, p) {
		t.Fatalf("inflated %q: %v", got, err)
	}
	incompressible := make([]byte, 300)
	for i := range incompressible {
		incompressible[i] = byte(i * 7919 >> 3)
	}
	if _, _, ok := AppendDeflatedFrame(buf, OpBinary, incompressible[:20]); ok {
		t.Fatal("a frame that does not shrink was kept")
	}
}

func TestDecoderDeflate(t *testing.T) {
	msg := strings.Repeat("κόσμε compressed ", 40)
	z := deflated(t, msg)
	third := len(z) / 3
	invalid := deflated(t, "ok \xed\xa0\x80 not")
	cases := []struct {
		name    string
		deflate bool
		max     int
		stream  [][]byte
		want    []tev
		wantErr *CloseError
	}{
		{name: "compressed text", deflate: true, stream: [][]byte{zf(true, true, 1, z)}, want: []tev{text(msg)}},
		{name: "compressed binary", deflate: true, stream: [][]byte{zf(true, true, 2, z)}, want: []tev{bin(msg)}},
		{name: "uncompressed message with deflate on", deflate: true, stream: [][]byte{zf(true, false, 1, []byte("plain"))}, want: []tev{text("plain")}},
		{name: "fragmented, RSV1 on the first frame only, ping between", deflate: true, stream: [][]byte{
			zf(false, true, 1, z[:third]), zf(true, false, 9, []byte("p")), zf(false, false, 0, z[third:2*third]), zf(true, false, 0, z[2*third:]),
		}, want: []tev{none(), ping("p"), none(), text(msg)}},
		{name: "compressed then plain then compressed", deflate: true, stream: [][]byte{zf(true, true, 1, z), zf(true, false, 2, []byte{0, 1}), zf(true, true, 1, z)},
			want: []tev{text(msg), bin("\x00\x01"), text(msg)}},
		{name: "RSV1 without the extension", stream: [][]byte{zf(true, true, 1, z)}, wantErr: ErrReservedBits},
		{name: "RSV2 with the extension", deflate: true, stream: [][]byte{rawFrame(0x80|0x20|1, []byte("x"), testMask)}, wantErr: ErrReservedBits},
		{name: "RSV1 on a continuation", deflate: true, stream: [][]byte{zf(false, true, 1, z[:third]), zf(true, true, 0, z[third:])}, want: []tev{none()}, wantErr: ErrCompressedCont},
		{name: "compressed ping", deflate: true, stream: [][]byte{zf(true, true, 9, nil)}, wantErr: ErrCompressedControl},
		{name: "compressed close", deflate: true, stream: [][]byte{zf(true, true, 8, []byte{3, 0xe8})}, wantErr: ErrCompressedControl},
		{name: "compressed invalid UTF-8 text", deflate: true, stream: [][]byte{zf(true, true, 1, invalid)}, wantErr: ErrInvalidUTF8},
		{name: "compressed invalid UTF-8 is fine as binary", deflate: true, stream: [][]byte{zf(true, true, 2, invalid)}, want: []tev{bin("ok \xed\xa0\x80 not")}},
		{name: "zip bomb", deflate: true, max: 64 << 10, stream: [][]byte{zf(true, true, 2, bomb(t))}, wantErr: ErrTooBig},
		{name: "inflates over the limit", deflate: true, max: len(msg) - 1, stream: [][]byte{zf(true, true, 1, z)}, wantErr: ErrTooBig},
		{name: "inflates to the limit", deflate: true, max: len(msg), stream: [][]byte{zf(true, true, 1, z)}, want: []tev{text(msg)}},
		{name: "corrupt data", deflate: true, stream: [][]byte{zf(true, true, 2, []byte{0xff, 0xff, 0xff})}, wantErr: ErrBadDeflate},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, chunk := range []func(int) int{whole, func(int) int { return 1 }} {
				d := Decoder{Deflate: c.deflate, MaxMessage: c.max}
				evs, _, err := feed(&d, slices.Concat(c.stream...), chunk)
				if err != error(c.wantErr) && !(c.wantErr == nil && err == nil) {
					t.Fatalf("err %v, want %v", err, c.wantErr)
				}
				if !slices.Equal(evs, c.want) {
					t.Fatalf("events %v, want %v", evs, c.want)
				}
			}
		})
	}
}

// The cost of inflating one client message.
func BenchmarkInflate(b *testing.B) {
	msg := []byte(`{"type":"send","data":{"t":1763769600123456789,"i":12345,"s":678,"k":19,"p":"` + strings.Repeat("move left jump ", 30) + `"}}`)
	z := deflated(b, string(msg))
	b.SetBytes(int64(len(msg)))
	var out []byte
	for range b.N {
		var err error
		if out, err = Inflate(out[:0], z, 64<<10); err != nil {
			b.Fatal(err)
		}
	}
}
