package codec

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/gobwas/ws"
)

// rawFrame builds a frame byte by byte, independently of the encoder under
// test: b0 is the first header byte (FIN, RSV, opcode); mask nil means an
// unmasked frame. The payload is copied and masked.
func rawFrame(b0 byte, payload []byte, mask []byte) []byte {
	var m byte
	if mask != nil {
		m = 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if mask == nil {
		return append(b, payload...)
	}
	b = append(b, mask...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	return b
}

var testMask = []byte{0x37, 0xfa, 0x21, 0x3d}

// cf builds a masked client frame.
func cf(fin bool, op ws.OpCode, payload string) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	return rawFrame(b0, []byte(payload), testMask)
}

func closePayload(code uint16, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, code)) + reason
}

func TestParseHeaderLengthEncodings(t *testing.T) {
	for _, n := range []int64{0, 1, 125, 126, 127, 0xffff, 0x10000, 1 << 32, 1<<63 - 1} {
		for _, masked := range []bool{false, true} {
			t.Run(fmt.Sprintf("len=%d/masked=%v", n, masked), func(t *testing.T) {
				var hdr []byte
				var mbit byte
				if masked {
					mbit = 0x80
				}
				wantSize := 2
				switch {
				case n <= 125:
					hdr = []byte{0x81, mbit | byte(n)}
				case n <= 0xffff:
					hdr = []byte{0x81, mbit | 126, byte(n >> 8), byte(n)}
					wantSize = 4
				default:
					hdr = binary.BigEndian.AppendUint64([]byte{0x81, mbit | 127}, uint64(n))
					wantSize = 10
				}
				if masked {
					hdr = append(hdr, testMask...)
					wantSize += 4
				}
				// Every proper prefix is incomplete: size 0, no error.
				for i := 0; i < len(hdr); i++ {
					h, size, err := ParseHeader(hdr[:i])
					if size != 0 || err != nil {
						t.Fatalf("prefix %d of %d: size %d err %v (header %+v), want 0, nil", i, len(hdr), size, err, h)
					}
				}
				h, size, err := ParseHeader(append(hdr, 'x', 'y')) // trailing payload bytes must not matter
				if err != nil || size != wantSize {
					t.Fatalf("size %d err %v, want %d, nil", size, err, wantSize)
				}
				if !h.Fin || h.Rsv != 0 || h.Op != OpText || h.Masked != masked || h.Length != n {
					t.Fatalf("header %+v", h)
				}
				if masked && !bytes.Equal(h.Mask[:], testMask) {
					t.Fatalf("mask %x, want %x", h.Mask, testMask)
				}
			})
		}
	}
}

func TestParseHeaderBits(t *testing.T) {
	for b0 := 0; b0 < 256; b0++ {
		h, size, err := ParseHeader([]byte{byte(b0), 0x85, 1, 2, 3, 4})
		if err != nil || size != 6 {
			t.Fatalf("b0=%#x: size %d err %v", b0, size, err)
		}
		if h.Fin != (b0&0x80 != 0) || h.Rsv != uint8(b0>>4&7) || byte(h.Op) != byte(b0&0xf) || h.Length != 5 || !h.Masked {
			t.Fatalf("b0=%#x: header %+v", b0, h)
		}
	}
}

func TestParseHeaderLengthMSB(t *testing.T) {
	b := []byte{0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0}
	for i := 0; i < len(b); i++ {
		if _, size, err := ParseHeader(b[:i]); size != 0 || err != nil {
			t.Fatalf("prefix %d: size %d err %v, want incomplete", i, size, err)
		}
	}
	if _, _, err := ParseHeader(b); err != ErrLengthEncoding {
		t.Fatalf("err %v, want ErrLengthEncoding", err)
	}
}

// Non-minimal length encodings are accepted (as most servers do): the
// length is what the field says.
func TestParseHeaderNonMinimalLength(t *testing.T) {
	h, size, err := ParseHeader([]byte{0x81, 126, 0, 5})
	if err != nil || size != 4 || h.Length != 5 {
		t.Fatalf("16-bit 5: %+v size %d err %v", h, size, err)
	}
	h, size, err = ParseHeader([]byte{0x81, 127, 0, 0, 0, 0, 0, 0, 0, 5})
	if err != nil || size != 10 || h.Length != 5 {
		t.Fatalf("64-bit 5: %+v size %d err %v", h, size, err)
	}
}

func TestHeaderSize(t *testing.T) {
	for _, c := range []struct{ n, want int }{{0, 2}, {125, 2}, {126, 4}, {0xffff, 4}, {0x10000, 10}, {1 << 40, 10}} {
		if got := HeaderSize(c.n); got != c.want {
			t.Errorf("HeaderSize(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

var roundTripSizes = []int{0, 1, 125, 126, 127, 0xffff, 0x10000, 0x10001}

func TestAppendFrameRoundTrip(t *testing.T) {
	ops := []ws.OpCode{OpContinuation, OpText, OpBinary, OpClose, OpPing, OpPong}
	for _, n := range roundTripSizes {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte(i*7 + 3)
		}
		for _, op := range ops {
			for _, fin := range []bool{true, false} {
				b0 := byte(op)
				if fin {
					b0 |= 0x80
				}
				prefix := []byte("prefix")
				got := AppendFrame(bytes.Clone(prefix), fin, op, payload)
				if !bytes.HasPrefix(got, prefix) {
					t.Fatalf("n=%d op=%v: prefix clobbered", n, op)
				}
				if want := rawFrame(b0, payload, nil); !bytes.Equal(got[len(prefix):], want) {
					t.Fatalf("n=%d op=%v fin=%v: AppendFrame differs from the reference encoding", n, op, fin)
				}
				h, hs, err := ParseHeader(got[len(prefix):])
				if err != nil || hs != HeaderSize(n) || h.Masked || h.Fin != fin || h.Op != op || h.Length != int64(n) {
					t.Fatalf("n=%d op=%v: parsed %+v size %d err %v", n, op, h, hs, err)
				}
				if !bytes.Equal(got[len(prefix)+hs:], payload) {
					t.Fatalf("n=%d op=%v: payload differs", n, op)
				}

				mask := [4]byte{byte(n), 0xa5, 0x5a, byte(op)}
				mf := AppendMaskedFrame(bytes.Clone(prefix), fin, op, payload, mask)
				if want := rawFrame(b0, payload, mask[:]); !bytes.Equal(mf[len(prefix):], want) {
					t.Fatalf("n=%d op=%v fin=%v: AppendMaskedFrame differs from the reference encoding", n, op, fin)
				}
				h, hs, err = ParseHeader(mf[len(prefix):])
				if err != nil || hs != HeaderSize(n)+4 || !h.Masked || h.Mask != mask || h.Length != int64(n) {
					t.Fatalf("n=%d op=%v masked: parsed %+v size %d err %v", n, op, h, hs, err)
				}
				p := bytes.Clone(mf[len(prefix)+hs:])
				ws.Cipher(p, h.Mask, 0)
				if !bytes.Equal(p, payload) {
					t.Fatalf("n=%d op=%v: unmasked payload differs", n, op)
				}
			}
		}
	}
}

// A masked frame built by AppendMaskedFrame decodes back to its payload.
func TestAppendMaskedFrameDecodes(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range roundTripSizes {
		payload := make([]byte, n)
		for i := range payload {
			payload[i] = byte('a' + r.IntN(26))
		}
		var mask [4]byte
		binary.LittleEndian.PutUint32(mask[:], r.Uint32())
		for _, op := range []ws.OpCode{OpText, OpBinary} {
			b := AppendMaskedFrame(nil, true, op, payload, mask)
			var d Decoder
			m, ev, err := d.Next(b)
			if err != nil || m != len(b) {
				t.Fatalf("n=%d: consumed %d of %d, err %v", n, m, len(b), err)
			}
			want := KindText
			if op == OpBinary {
				want = KindBinary
			}
			if ev.Kind != want || !bytes.Equal(ev.Payload, payload) {
				t.Fatalf("n=%d: event kind %v, payload equal %v", n, ev.Kind, bytes.Equal(ev.Payload, payload))
			}
		}
	}
}

func TestAppendClose(t *testing.T) {
	if got := AppendClose(nil, 0, "ignored"); !bytes.Equal(got, []byte{0x88, 0}) {
		t.Fatalf("code 0: %x", got)
	}
	got := AppendClose(nil, 1001, "going away")
	if want := rawFrame(0x88, []byte(closePayload(1001, "going away")), nil); !bytes.Equal(got, want) {
		t.Fatalf("1001: %x, want %x", got, want)
	}
	long := string(bytes.Repeat([]byte("r"), 200))
	got = AppendClose(nil, 1000, long)
	if len(got) != 2+MaxControlPayload || got[1] != MaxControlPayload {
		t.Fatalf("long reason: frame of %d bytes, length byte %d", len(got), got[1])
	}
	var d Decoder
	d.FromServer = true
	if _, ev, err := d.Next(got); err != nil || ev.Kind != KindClose || ev.CloseCode != 1000 || len(ev.Payload) != 123 {
		t.Fatalf("long reason decodes to %+v, %v", ev, err)
	}
}

func TestValidCloseCode(t *testing.T) {
	valid := map[uint16]bool{}
	for c := 1000; c <= 1003; c++ {
		valid[uint16(c)] = true
	}
	for c := 1007; c <= 1014; c++ {
		valid[uint16(c)] = true
	}
	for c := 3000; c <= 4999; c++ {
		valid[uint16(c)] = true
	}
	for c := 0; c <= 0xffff; c++ {
		if got := ValidCloseCode(uint16(c)); got != valid[uint16(c)] {
			t.Errorf("ValidCloseCode(%d) = %v", c, got)
		}
	}
}

func TestParseClosePayload(t *testing.T) {
	cases := []struct {
		name       string
		payload    string
		wantCode   uint16
		wantReason string
		wantErr    error
	}{
		{"empty", "", CloseNoStatus, "", nil},
		{"one byte", "\x03", 0, "", ErrCloseLength},
		{"1000", closePayload(1000, ""), 1000, "", nil},
		{"1000 reason", closePayload(1000, "bye"), 1000, "bye", nil},
		{"1000 utf8 reason", closePayload(1000, "κόσμε"), 1000, "κόσμε", nil},
		{"123-byte reason", closePayload(1000, string(bytes.Repeat([]byte("x"), 123))), 1000, string(bytes.Repeat([]byte("x"), 123)), nil},
		{"invalid utf8 reason", closePayload(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"), 0, "", ErrInvalidCloseUTF8},
		{"truncated utf8 reason", closePayload(1000, "ok\xce"), 0, "", ErrInvalidCloseUTF8},
	}
	for _, c := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		cases = append(cases, struct {
			name       string
			payload    string
			wantCode   uint16
			wantReason string
			wantErr    error
		}{fmt.Sprintf("valid %d", c), closePayload(c, "r"), c, "r", nil})
	}
	for _, c := range []uint16{0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 0xffff} {
		cases = append(cases, struct {
			name       string
			payload    string
			wantCode   uint16
			wantReason string
			wantErr    error
		}{fmt.Sprintf("invalid %d", c), closePayload(c, ""), 0, "", ErrCloseCode})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, reason, err := ParseClosePayload([]byte(c.payload))
			if err != c.wantErr {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			if err != nil {
				var ce *CloseError
				if !errors.As(err, &ce) {
					t.Fatalf("err %T is not a *CloseError", err)
				}
				return
			}
			if code != c.wantCode || string(reason) != c.wantReason {
				t.Fatalf("got %d %q, want %d %q", code, reason, c.wantCode, c.wantReason)
			}
		})
	}
}

func TestCloseErrorCodes(t *testing.T) {
	for err, code := range map[*CloseError]uint16{
		ErrReservedBits: 1002, ErrReservedOpcode: 1002, ErrUnmasked: 1002, ErrMasked: 1002,
		ErrControlTooLong: 1002, ErrControlFragmented: 1002, ErrUnexpectedCont: 1002,
		ErrExpectedCont: 1002, ErrLengthEncoding: 1002, ErrCloseLength: 1002, ErrCloseCode: 1002,
		ErrInvalidUTF8: 1007, ErrInvalidCloseUTF8: 1007, ErrTooBig: 1009,
	} {
		if err.Code != code {
			t.Errorf("%v: code %d, want %d", err, err.Code, code)
		}
		if len(err.Reason) > 123 || !ValidUTF8([]byte(err.Reason)) {
			t.Errorf("%v: reason does not fit a close frame", err)
		}
	}
}

func TestAppendFrameNoAlloc(t *testing.T) {
	payload := bytes.Repeat([]byte("p"), 300)
	dst := make([]byte, 0, 512)
	allocs := testing.AllocsPerRun(100, func() {
		dst = AppendFrame(dst[:0], true, OpText, payload)
	})
	if allocs != 0 {
		t.Fatalf("AppendFrame into a preallocated buffer: %v allocs per run, want 0", allocs)
	}
	var mask [4]byte
	allocs = testing.AllocsPerRun(100, func() {
		dst = AppendMaskedFrame(dst[:0], true, OpBinary, payload, mask)
		dst = AppendClose(dst[:0], 1000, "bye")
	})
	if allocs != 0 {
		t.Fatalf("AppendMaskedFrame/AppendClose into a preallocated buffer: %v allocs per run, want 0", allocs)
	}
}
