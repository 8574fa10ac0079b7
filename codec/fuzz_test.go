package codec

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"unicode/utf8"
)

// feedChecked is feed with the decoder's contract checked at every call:
// it consumes exactly one whole frame (as an independent header parse
// sizes it) or nothing, it never waits on a buffer that holds a complete
// frame, and every event obeys RFC 6455.
func feedChecked(d *Decoder, stream []byte, chunk func(i int) int) (evs []tev, left int, err error) {
	var buf []byte
	pos := 0
	for i := 0; ; i++ {
		for {
			h, hs, herr := ParseHeader(buf)
			frameLen := -1 // the complete frame's size, if buf holds one
			if herr == nil && hs > 0 && int64(len(buf)-hs) >= h.Length {
				frameLen = hs + int(h.Length)
			}
			n, ev, err := d.Next(buf)
			if err != nil {
				if _, ok := err.(*CloseError); !ok {
					return evs, len(buf), fmt.Errorf("error %v is not a *CloseError", err)
				}
				if herr != nil && err != herr {
					return evs, len(buf), fmt.Errorf("header error %v, Next returned %v", herr, err)
				}
				return evs, len(buf), err
			}
			if n == 0 {
				if frameLen >= 0 {
					return evs, len(buf), fmt.Errorf("Next waits on a complete %d-byte frame", frameLen)
				}
				break
			}
			if n != frameLen {
				return evs, len(buf), fmt.Errorf("consumed %d bytes, the frame has %d (buffer %d)", n, frameLen, len(buf))
			}
			if err := checkEvent(d, h, ev); err != nil {
				return evs, len(buf), err
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

// checkEvent checks one event against the header of the frame it came from.
func checkEvent(d *Decoder, h Header, ev Event) error {
	if h.Rsv != 0 || h.Masked == d.FromServer {
		return fmt.Errorf("frame %+v accepted", h)
	}
	switch ev.Kind {
	case KindNone:
		if h.Fin || h.Op > OpBinary {
			return fmt.Errorf("no event from frame %+v", h)
		}
	case KindText, KindBinary:
		if !h.Fin || (h.Op != OpContinuation && h.Op != OpText && h.Op != OpBinary) {
			return fmt.Errorf("message from frame %+v", h)
		}
		if ev.Kind == KindText && !utf8.Valid(ev.Payload) {
			return fmt.Errorf("text message with invalid UTF-8 %q", ev.Payload)
		}
		if d.MaxMessage > 0 && len(ev.Payload) > d.MaxMessage {
			return fmt.Errorf("message of %d bytes over the %d limit", len(ev.Payload), d.MaxMessage)
		}
	case KindPing, KindPong, KindClose:
		want := map[Kind]byte{KindPing: 9, KindPong: 10, KindClose: 8}[ev.Kind]
		if byte(h.Op) != want || !h.Fin || h.Length > MaxControlPayload {
			return fmt.Errorf("control event %v from frame %+v", ev.Kind, h)
		}
		if ev.Kind == KindClose {
			switch {
			case ev.CloseCode == CloseNoStatus:
				if h.Length != 0 {
					return fmt.Errorf("close without status from a %d-byte payload", h.Length)
				}
			case !ValidCloseCode(ev.CloseCode) || !utf8.Valid(ev.Payload) || int64(len(ev.Payload)) != h.Length-2:
				return fmt.Errorf("close %d %q from frame %+v", ev.CloseCode, ev.Payload, h)
			}
		} else if int64(len(ev.Payload)) != h.Length {
			return fmt.Errorf("control payload of %d bytes from frame %+v", len(ev.Payload), h)
		}
	default:
		return fmt.Errorf("unknown event kind %d", ev.Kind)
	}
	return nil
}

// FuzzDecoder feeds arbitrary bytes to the decoder, whole and split at
// points the fuzzer chooses (cuts are the sizes of successive reads), and
// requires identical events and errors both ways.
func FuzzDecoder(f *testing.F) {
	for _, c := range decoderCases() {
		f.Add(slices.Concat(c.stream...), []byte{0, 1, 6}, uint16(c.max), c.fromServer)
	}
	f.Add(slices.Concat(cf(false, OpText, "a\xce"), cf(true, OpPing, "x"), cf(true, OpContinuation, "\xba")), []byte{2}, uint16(0), false)
	f.Add([]byte{0x81, 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, []byte{}, uint16(0), false)
	f.Fuzz(func(t *testing.T, data, cuts []byte, maxMsg uint16, fromServer bool) {
		if len(data) > 1<<16 {
			return
		}
		chunk := func(i int) int {
			if len(cuts) == 0 {
				return 1
			}
			return int(cuts[i%len(cuts)]) + 1
		}
		d1 := Decoder{MaxMessage: int(maxMsg), FromServer: fromServer}
		evs1, left1, err1 := feedChecked(&d1, bytes.Clone(data), whole)
		if _, ok := err1.(*CloseError); err1 != nil && !ok {
			t.Fatalf("whole: %v", err1)
		}
		d2 := Decoder{MaxMessage: int(maxMsg), FromServer: fromServer}
		evs2, left2, err2 := feedChecked(&d2, bytes.Clone(data), chunk)
		if _, ok := err2.(*CloseError); err2 != nil && !ok {
			t.Fatalf("split: %v", err2)
		}
		if err1 != err2 {
			t.Fatalf("whole: err %v; split: err %v", err1, err2)
		}
		if !slices.Equal(evs1, evs2) {
			t.Fatalf("whole: %v; split: %v", evs1, evs2)
		}
		if err1 == nil && left1 != left2 {
			t.Fatalf("left unconsumed: whole %d, split %d", left1, left2)
		}
	})
}

// FuzzUTF8 compares the incremental validator with unicode/utf8 on
// arbitrary input split at every point.
func FuzzUTF8(f *testing.F) {
	for _, s := range interesting {
		f.Add([]byte(s))
	}
	f.Add([]byte("0123456789abcdef\xce\xba"))
	f.Add([]byte("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"))
	f.Fuzz(func(t *testing.T, p []byte) {
		if len(p) > 512 {
			return
		}
		checkUTF8(t, p)
	})
}

// FuzzInflate: arbitrary input never makes Inflate exceed its limit or
// fail other than with ErrTooBig or ErrBadDeflate, and what AppendDeflate
// compresses inflates back to itself.
func FuzzInflate(f *testing.F) {
	f.Add([]byte("hello hello hello"), uint16(100))
	f.Add([]byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}, uint16(3))
	f.Add([]byte{0xff, 0xff, 0xff}, uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, limit uint16) {
		if len(data) > 1<<16 {
			return
		}
		out, err := Inflate(nil, data, int(limit))
		switch err {
		case nil, ErrBadDeflate:
		case ErrTooBig:
			if limit == 0 {
				t.Fatal("ErrTooBig without a limit")
			}
		default:
			t.Fatalf("error %v", err)
		}
		if limit > 0 && len(out) > int(limit)+1 {
			t.Fatalf("%d bytes out with a limit of %d", len(out), limit)
		}
		z, err := AppendDeflate(nil, data)
		if err != nil {
			t.Fatal(err)
		}
		if back, err := Inflate(nil, z, len(data)); err != nil || !bytes.Equal(back, data) {
			t.Fatalf("round trip of %d bytes: %d bytes, %v", len(data), len(back), err)
		}
	})
}

// FuzzDecoderDeflate runs arbitrary streams through a decoder with
// permessage-deflate on: only CloseErrors, every message within the
// limit, text valid UTF-8.
func FuzzDecoderDeflate(f *testing.F) {
	z, _ := AppendDeflate(nil, []byte("compressed compressed compressed"))
	f.Add(rawFrame(0xc1, z, testMask), uint16(100))
	f.Add(slices.Concat(rawFrame(0x41, z[:5], testMask), rawFrame(0x80, z[5:], testMask)), uint16(0))
	f.Add(rawFrame(0xc9, nil, testMask), uint16(0))
	f.Fuzz(func(t *testing.T, data []byte, maxMsg uint16) {
		if len(data) > 1<<16 {
			return
		}
		d := Decoder{MaxMessage: int(maxMsg), Deflate: true}
		buf := bytes.Clone(data)
		for len(buf) > 0 {
			n, ev, err := d.Next(buf)
			if err != nil {
				if _, ok := err.(*CloseError); !ok {
					t.Fatalf("error %v is not a *CloseError", err)
				}
				return
			}
			if n == 0 {
				return
			}
			if ev.Kind == KindText && !utf8.Valid(ev.Payload) {
				t.Fatalf("invalid UTF-8 text %q", ev.Payload)
			}
			if (ev.Kind == KindText || ev.Kind == KindBinary) && maxMsg > 0 && len(ev.Payload) > int(maxMsg) {
				t.Fatalf("message of %d bytes over the %d limit", len(ev.Payload), maxMsg)
			}
			buf = buf[n:]
		}
	})
}
