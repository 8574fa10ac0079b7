package codec

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// tev is a decoded event with its payload copied.
type tev struct {
	Kind    Kind
	Payload string
	Code    uint16
}

func (e tev) String() string {
	p := e.Payload
	if len(p) > 20 {
		p = fmt.Sprintf("%.20q...(%d bytes)", p, len(p))
	} else {
		p = fmt.Sprintf("%q", p)
	}
	if e.Kind == KindClose {
		return fmt.Sprintf("close(%d,%s)", e.Code, p)
	}
	return fmt.Sprintf("%s(%s)", [...]string{"none", "text", "binary", "ping", "pong", "close"}[e.Kind], p)
}

// feed decodes stream delivered in chunks (chunk(i) is the size of the i-th
// delivery, at least 1), the way the server does: bytes accumulate in a
// buffer and complete frames are consumed from its front. It stops at the
// first error and reports how many bytes were left unconsumed.
func feed(d *Decoder, stream []byte, chunk func(i int) int) (evs []tev, left int, err error) {
	var buf []byte
	pos := 0
	for i := 0; ; i++ {
		for {
			n, ev, err := d.Next(buf)
			if err != nil {
				return evs, len(buf), err
			}
			if n == 0 {
				break
			}
			if n > len(buf) {
				return evs, len(buf), fmt.Errorf("consumed %d of %d bytes", n, len(buf))
			}
			evs = append(evs, tev{ev.Kind, string(ev.Payload), ev.CloseCode})
			buf = buf[n:]
		}
		if pos == len(stream) {
			return evs, len(buf), nil
		}
		k := min(max(chunk(i), 1), len(stream)-pos)
		buf = append(buf, stream[pos:pos+k]...)
		pos += k
	}
}

func whole(int) int { return 1 << 30 }

type decCase struct {
	name       string
	max        int
	fromServer bool
	stream     [][]byte
	want       []tev
	wantErr    *CloseError
}

func text(s string) tev { return tev{Kind: KindText, Payload: s} }
func bin(s string) tev  { return tev{Kind: KindBinary, Payload: s} }
func ping(s string) tev { return tev{Kind: KindPing, Payload: s} }
func pong(s string) tev { return tev{Kind: KindPong, Payload: s} }
func none() tev         { return tev{Kind: KindNone} }
func closeEv(code uint16, reason string) tev {
	return tev{Kind: KindClose, Payload: reason, Code: code}
}

func decoderCases() []decCase {
	long125 := strings.Repeat("p", 125)
	cs := []decCase{
		{name: "text", stream: [][]byte{cf(true, OpText, "hello")}, want: []tev{text("hello")}},
		{name: "empty text", stream: [][]byte{cf(true, OpText, "")}, want: []tev{text("")}},
		{name: "binary", stream: [][]byte{cf(true, OpBinary, "\x00\xff\xfe")}, want: []tev{bin("\x00\xff\xfe")}},
		{name: "text 126", stream: [][]byte{cf(true, OpText, strings.Repeat("a", 126))}, want: []tev{text(strings.Repeat("a", 126))}},
		{name: "text 65536", stream: [][]byte{cf(true, OpText, strings.Repeat("b", 65536))}, want: []tev{text(strings.Repeat("b", 65536))}},
		{name: "two messages", stream: [][]byte{cf(true, OpText, "a"), cf(true, OpBinary, "b")}, want: []tev{text("a"), bin("b")}},

		// masking
		{name: "unmasked client frame", stream: [][]byte{rawFrame(0x81, []byte("hi"), nil)}, wantErr: ErrUnmasked},
		{name: "unmasked ping", stream: [][]byte{rawFrame(0x89, nil, nil)}, wantErr: ErrUnmasked},
		{name: "server frame unmasked", fromServer: true, stream: [][]byte{rawFrame(0x81, []byte("hi"), nil)}, want: []tev{text("hi")}},
		{name: "server frame masked", fromServer: true, stream: [][]byte{cf(true, OpText, "hi")}, wantErr: ErrMasked},

		// control frames
		{name: "ping empty", stream: [][]byte{cf(true, OpPing, "")}, want: []tev{ping("")}},
		{name: "ping 125", stream: [][]byte{cf(true, OpPing, long125)}, want: []tev{ping(long125)}},
		{name: "ping 126", stream: [][]byte{cf(true, OpPing, long125+"p")}, wantErr: ErrControlTooLong},
		{name: "pong 126", stream: [][]byte{cf(true, OpPong, long125+"p")}, wantErr: ErrControlTooLong},
		{name: "close 126", stream: [][]byte{cf(true, OpClose, closePayload(1000, long125[:124]))}, wantErr: ErrControlTooLong},
		{name: "pong", stream: [][]byte{cf(true, OpPong, "x")}, want: []tev{pong("x")}},
		{name: "fragmented ping", stream: [][]byte{cf(false, OpPing, "a"), cf(true, OpContinuation, "b")}, wantErr: ErrControlFragmented},
		{name: "fragmented pong", stream: [][]byte{cf(false, OpPong, "a")}, wantErr: ErrControlFragmented},
		{name: "fragmented close", stream: [][]byte{cf(false, OpClose, "")}, wantErr: ErrControlFragmented},

		// fragmentation
		{name: "two fragments", stream: [][]byte{cf(false, OpText, "hel"), cf(true, OpContinuation, "lo")}, want: []tev{none(), text("hello")}},
		{name: "binary fragments", stream: [][]byte{cf(false, OpBinary, "\xff"), cf(false, OpContinuation, "\xfe"), cf(true, OpContinuation, "\xfd")},
			want: []tev{none(), none(), bin("\xff\xfe\xfd")}},
		{name: "empty fragments", stream: [][]byte{cf(false, OpText, ""), cf(false, OpContinuation, ""), cf(true, OpContinuation, "")},
			want: []tev{none(), none(), text("")}},
		{name: "control frames interleaved", stream: [][]byte{
			cf(false, OpText, "fra"), cf(true, OpPing, "p1"), cf(false, OpContinuation, "gme"),
			cf(true, OpPong, "p2"), cf(true, OpContinuation, "nted"), cf(true, OpText, "next"),
		}, want: []tev{none(), ping("p1"), none(), pong("p2"), text("fragmented"), text("next")}},
		{name: "close inside fragmented message", stream: [][]byte{cf(false, OpText, "a"), cf(true, OpClose, closePayload(1000, ""))},
			want: []tev{none(), closeEv(1000, "")}},
		{name: "continuation without message", stream: [][]byte{cf(true, OpContinuation, "x")}, wantErr: ErrUnexpectedCont},
		{name: "non-final continuation without message", stream: [][]byte{cf(false, OpContinuation, "x")}, wantErr: ErrUnexpectedCont},
		{name: "continuation after a complete message", stream: [][]byte{cf(false, OpText, "a"), cf(true, OpContinuation, "b"), cf(true, OpContinuation, "c")},
			want: []tev{none(), text("ab")}, wantErr: ErrUnexpectedCont},
		{name: "text inside fragmented message", stream: [][]byte{cf(false, OpText, "a"), cf(true, OpText, "b")}, want: []tev{none()}, wantErr: ErrExpectedCont},
		{name: "binary inside fragmented message", stream: [][]byte{cf(false, OpText, "a"), cf(false, OpBinary, "b")}, want: []tev{none()}, wantErr: ErrExpectedCont},

		// reserved bits and opcodes, length encoding
		{name: "64-bit length with MSB set", stream: [][]byte{{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}}, wantErr: ErrLengthEncoding},

		// size limit
		{name: "at the limit", max: 10, stream: [][]byte{cf(true, OpText, "0123456789")}, want: []tev{text("0123456789")}},
		{name: "over the limit", max: 10, stream: [][]byte{cf(true, OpText, "0123456789A")}, wantErr: ErrTooBig},
		{name: "fragments at the limit", max: 10, stream: [][]byte{cf(false, OpBinary, "01234"), cf(true, OpContinuation, "56789")},
			want: []tev{none(), bin("0123456789")}},
		{name: "fragments over the limit", max: 10, stream: [][]byte{cf(false, OpBinary, "01234"), cf(true, OpContinuation, "56789A")},
			want: []tev{none()}, wantErr: ErrTooBig},
		{name: "limit reset after a message", max: 10, stream: [][]byte{cf(false, OpText, "01234"), cf(true, OpContinuation, "56789"), cf(true, OpText, "0123456789")},
			want: []tev{none(), text("0123456789"), text("0123456789")}},
		{name: "control frames are not limited", max: 10, stream: [][]byte{cf(true, OpPing, long125)}, want: []tev{ping(long125)}},

		// UTF-8
		{name: "valid utf8", stream: [][]byte{cf(true, OpText, "κόσμε \U0010ffff \ufffd")}, want: []tev{text("κόσμε \U0010ffff \ufffd")}},
		{name: "invalid utf8", stream: [][]byte{cf(true, OpText, "a\xffb")}, wantErr: ErrInvalidUTF8},
		{name: "surrogate", stream: [][]byte{cf(true, OpText, "\xed\xa0\x80")}, wantErr: ErrInvalidUTF8},
		{name: "overlong", stream: [][]byte{cf(true, OpText, "\xc0\xaf")}, wantErr: ErrInvalidUTF8},
		{name: "truncated at end", stream: [][]byte{cf(true, OpText, "ab\xce")}, wantErr: ErrInvalidUTF8},
		{name: "code point split across fragments", stream: [][]byte{cf(false, OpText, "a\xce"), cf(true, OpContinuation, "\xbab")},
			want: []tev{none(), text("aκb")}},
		{name: "4-byte code point over 4 fragments", stream: [][]byte{
			cf(false, OpText, "\xf0"), cf(false, OpContinuation, "\x90"), cf(true, OpPing, ""),
			cf(false, OpContinuation, "\x80"), cf(true, OpContinuation, "\x80"),
		}, want: []tev{none(), none(), ping(""), none(), text("\U00010000")}},
		{name: "invalid fails fast in the first fragment", stream: [][]byte{cf(false, OpText, "ok\xf5"), cf(true, OpContinuation, "x")}, wantErr: ErrInvalidUTF8},
		{name: "invalid fails fast in a middle fragment", stream: [][]byte{cf(false, OpText, "ok\xed"), cf(false, OpContinuation, "\xa0\x80"), cf(true, OpContinuation, "x")},
			want: []tev{none()}, wantErr: ErrInvalidUTF8},
		{name: "truncated at the end of a fragmented message", stream: [][]byte{cf(false, OpText, "ok\xce"), cf(true, OpContinuation, "")},
			want: []tev{none()}, wantErr: ErrInvalidUTF8},
		{name: "binary is not validated", stream: [][]byte{cf(true, OpBinary, "\xff\xce")}, want: []tev{bin("\xff\xce")}},
		{name: "binary does not feed the text validator", stream: [][]byte{cf(false, OpBinary, "\xce"), cf(true, OpContinuation, ""), cf(true, OpText, "\xba")},
			want: []tev{none(), bin("\xce")}, wantErr: ErrInvalidUTF8},
		{name: "validator reset between messages", stream: [][]byte{cf(true, OpText, "κ"), cf(false, OpText, "\xce"), cf(true, OpContinuation, "\xba"), cf(true, OpText, "x")},
			want: []tev{text("κ"), none(), text("κ"), text("x")}},

		// close payloads
		{name: "close empty", stream: [][]byte{cf(true, OpClose, "")}, want: []tev{closeEv(CloseNoStatus, "")}},
		{name: "close 1 byte", stream: [][]byte{cf(true, OpClose, "\x03")}, wantErr: ErrCloseLength},
		{name: "close with reason", stream: [][]byte{cf(true, OpClose, closePayload(1000, "bye κ"))}, want: []tev{closeEv(1000, "bye κ")}},
		{name: "close 123-byte reason", stream: [][]byte{cf(true, OpClose, closePayload(4999, long125[:123]))}, want: []tev{closeEv(4999, long125[:123])}},
		{name: "close invalid utf8 reason", stream: [][]byte{cf(true, OpClose, closePayload(1000, "\xce\xba\xed\xa0\x80"))}, wantErr: ErrInvalidCloseUTF8},
	}
	for rsv := byte(1); rsv < 8; rsv++ {
		cs = append(cs,
			decCase{name: fmt.Sprintf("rsv %d text", rsv), stream: [][]byte{rawFrame(0x81|rsv<<4, []byte("x"), testMask)}, wantErr: ErrReservedBits},
			decCase{name: fmt.Sprintf("rsv %d ping", rsv), stream: [][]byte{rawFrame(0x89|rsv<<4, nil, testMask)}, wantErr: ErrReservedBits},
			decCase{name: fmt.Sprintf("rsv %d after a message", rsv), stream: [][]byte{cf(true, OpText, "ok"), rawFrame(0x82|rsv<<4, nil, testMask)},
				want: []tev{text("ok")}, wantErr: ErrReservedBits},
		)
	}
	for _, op := range []byte{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		cs = append(cs,
			decCase{name: fmt.Sprintf("opcode %d", op), stream: [][]byte{rawFrame(0x80|op, nil, testMask)}, wantErr: ErrReservedOpcode},
			decCase{name: fmt.Sprintf("opcode %d with payload", op), stream: [][]byte{cf(true, OpText, "ok"), rawFrame(0x80|op, []byte("reserved"), testMask)},
				want: []tev{text("ok")}, wantErr: ErrReservedOpcode},
		)
	}
	for _, c := range []uint16{999, 1004, 1005, 1006, 1015, 1016, 2999, 5000} {
		cs = append(cs, decCase{name: fmt.Sprintf("close code %d", c), stream: [][]byte{cf(true, OpClose, closePayload(c, ""))}, wantErr: ErrCloseCode})
	}
	for _, c := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4999} {
		cs = append(cs, decCase{name: fmt.Sprintf("close code %d", c), stream: [][]byte{cf(true, OpClose, closePayload(c, "r"))}, want: []tev{closeEv(c, "r")}})
	}
	return cs
}

func TestDecoder(t *testing.T) {
	chunkings := []struct {
		name  string
		chunk func(int) int
	}{
		{"whole", whole},
		{"bytewise", func(int) int { return 1 }},
		{"by 2", func(int) int { return 2 }},
		{"by 3", func(int) int { return 3 }},
		{"by 7", func(int) int { return 7 }},
		{"uneven", func(i int) int { return []int{1, 5, 2, 13, 4, 100}[i%6] }},
	}
	for _, c := range decoderCases() {
		t.Run(c.name, func(t *testing.T) {
			stream := slices.Concat(c.stream...)
			for _, ch := range chunkings {
				d := Decoder{MaxMessage: c.max, FromServer: c.fromServer}
				evs, left, err := feed(&d, bytes.Clone(stream), ch.chunk)
				if err != nil {
					if _, ok := err.(*CloseError); !ok {
						t.Fatalf("%s: %v", ch.name, err)
					}
				}
				if err != error(c.wantErr) && !(err == nil && c.wantErr == nil) {
					t.Fatalf("%s: err %v, want %v (events %v)", ch.name, err, c.wantErr, evs)
				}
				if !slices.Equal(evs, c.want) {
					t.Fatalf("%s: events %v, want %v", ch.name, evs, c.want)
				}
				if c.wantErr == nil && left != 0 {
					t.Fatalf("%s: %d bytes left unconsumed", ch.name, left)
				}
			}
		})
	}
}

// Limit violations and header-only errors are found before the payload
// arrives: a peer cannot make the server buffer a frame it will refuse.
func TestDecoderErrorsFromHeaderAlone(t *testing.T) {
	hdr := func(b0 byte, n uint64) []byte {
		var b []byte
		switch {
		case n <= 125:
			b = []byte{b0, 0x80 | byte(n)}
		case n <= 0xffff:
			b = []byte{b0, 0x80 | 126, byte(n >> 8), byte(n)}
		default:
			b = binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, n)
		}
		return append(b, testMask...)
	}
	cases := []struct {
		name   string
		max    int
		prefix [][]byte // complete frames before the header
		header []byte
		want   *CloseError
	}{
		{"text over limit", 1000, nil, hdr(0x81, 1001), ErrTooBig},
		{"binary 1 TiB", 1000, nil, hdr(0x82, 1<<40), ErrTooBig},
		{"default 64 KiB limit", 64 << 10, nil, hdr(0x81, 64<<10+1), ErrTooBig},
		{"second fragment crosses the limit", 1000, [][]byte{cf(false, OpText, strings.Repeat("a", 600))}, hdr(0x00, 401), ErrTooBig},
		{"ping 126", 0, nil, hdr(0x89, 126), ErrControlTooLong},
		{"close 64-bit 200", 0, nil, hdr(0x88, 200), ErrControlTooLong},
		{"fragmented ping", 0, nil, hdr(0x09, 10), ErrControlFragmented},
		{"reserved opcode", 0, nil, hdr(0x83, 10), ErrReservedOpcode},
		{"rsv", 0, nil, hdr(0xc1, 10), ErrReservedBits},
		{"continuation without message", 0, nil, hdr(0x80, 10), ErrUnexpectedCont},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decoder{MaxMessage: c.max}
			for _, f := range c.prefix {
				if n, _, err := d.Next(bytes.Clone(f)); n != len(f) || err != nil {
					t.Fatalf("prefix frame: n %d err %v", n, err)
				}
			}
			n, _, err := d.Next(c.header)
			if err != error(c.want) {
				t.Fatalf("n %d err %v, want %v", n, err, c.want)
			}
		})
	}
}

// A frame whose payload has not fully arrived is not consumed, and the
// decoder does not unmask (touch) the partial payload.
func TestDecoderIncompleteFrameUntouched(t *testing.T) {
	f := cf(true, OpText, "hello world")
	for i := 0; i < len(f); i++ {
		var d Decoder
		part := bytes.Clone(f[:i])
		n, ev, err := d.Next(part)
		if n != 0 || err != nil || ev.Kind != KindNone || ev.Payload != nil {
			t.Fatalf("prefix %d: n %d ev %+v err %v", i, n, ev, err)
		}
		if !bytes.Equal(part, f[:i]) {
			t.Fatalf("prefix %d: input modified", i)
		}
	}
}

func TestDecoderInMessage(t *testing.T) {
	var d Decoder
	steps := []struct {
		frame []byte
		in    bool
	}{
		{cf(true, OpText, "a"), false},
		{cf(false, OpText, "a"), true},
		{cf(true, OpPing, ""), true},
		{cf(false, OpContinuation, "b"), true},
		{cf(true, OpContinuation, "c"), false},
	}
	for i, s := range steps {
		if _, _, err := d.Next(s.frame); err != nil {
			t.Fatal(err)
		}
		if d.InMessage() != s.in {
			t.Fatalf("step %d: InMessage %v, want %v", i, d.InMessage(), s.in)
		}
	}
}

// A large fragmented message does not pin its buffer after it completes,
// and the payload handed out stays intact after the buffer is dropped.
func TestDecoderDropsLargeFragmentBuffer(t *testing.T) {
	var d Decoder
	big := strings.Repeat("z", 3*fragKeep)
	evs, _, err := feed(&d, slices.Concat(cf(false, OpBinary, big), cf(true, OpContinuation, big)), whole)
	if err != nil || len(evs) != 2 || evs[1].Payload != big+big {
		t.Fatalf("events %v err %v", evs, err)
	}
	if cap(d.frag) > fragKeep {
		t.Fatalf("fragment buffer of %d bytes kept", cap(d.frag))
	}
}

func TestDecoderNextNoAlloc(t *testing.T) {
	frame := cf(true, OpText, `{"type":"send","data":"hello κόσμε, a message of some length"}`)
	buf := make([]byte, len(frame))
	d := Decoder{MaxMessage: 64 << 10}
	ok := true
	allocs := testing.AllocsPerRun(1000, func() {
		copy(buf, frame)
		n, ev, err := d.Next(buf)
		ok = ok && err == nil && n == len(buf) && ev.Kind == KindText
	})
	if !ok {
		t.Fatal("decoding failed")
	}
	if allocs != 0 {
		t.Fatalf("Decoder.Next on an unfragmented masked text frame: %v allocs per run, want 0", allocs)
	}

	// A small fragmented message reuses the fragment buffer once warm.
	stream := slices.Concat(cf(false, OpText, "frag"), cf(true, OpPing, "p"), cf(true, OpContinuation, "ment κ"))
	sbuf := make([]byte, len(stream))
	allocs = testing.AllocsPerRun(1000, func() {
		copy(sbuf, stream)
		b := sbuf
		for len(b) > 0 {
			n, _, err := d.Next(b)
			if err != nil || n == 0 {
				ok = false
				return
			}
			b = b[n:]
		}
	})
	if !ok {
		t.Fatal("decoding the fragmented message failed")
	}
	if allocs != 0 {
		t.Fatalf("Decoder.Next on a small fragmented message: %v allocs per run, want 0", allocs)
	}
}
