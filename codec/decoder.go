package codec

import "github.com/gobwas/ws"

// Kind is what a decoded frame produced.
type Kind uint8

// Event kinds returned by Decoder.Next.
const (
	KindNone   Kind = iota // a frame was consumed but no message completed yet
	KindText               // a complete text message (valid UTF-8)
	KindBinary             // a complete binary message
	KindPing
	KindPong
	KindClose // CloseCode/Payload hold the validated code and reason
)

// Event is one complete message or control frame.
type Event struct {
	Kind      Kind
	Payload   []byte // see the package doc for how long it stays valid
	CloseCode uint16 // KindClose only; CloseNoStatus for an empty close
}

// fragKeep is the largest fragment buffer kept between messages; larger
// ones are dropped so that an idle connection holds no big buffer.
const fragKeep = 4 << 10

// Decoder is an incremental RFC 6455 frame decoder. The zero value decodes
// client-to-server frames (masking required) with no size limit.
type Decoder struct {
	// MaxMessage is the largest message payload in bytes (after reassembly);
	// 0 means no limit. Crossing it is ErrTooBig (close 1009), detected from
	// the header alone, before the payload arrives.
	MaxMessage int
	// FromServer decodes server-to-client frames: masking is forbidden.
	FromServer bool
	// Deflate accepts permessage-deflate (RFC 7692) messages, negotiated
	// without context takeover: RSV1 on the first frame of a data message
	// marks it compressed, and the event carries the inflated payload
	// (limited by MaxMessage, and valid until the next Next or Release).
	Deflate bool

	fragOp     ws.OpCode // opcode of the fragmented message in progress, 0 if none
	compressed bool      // the message in progress is compressed (RSV1 on its first frame)
	frag       []byte
	utf8       UTF8
	out        *[]byte // pooled buffer of the last inflated message (deflate.go)
}

// InMessage reports whether a fragmented message is in progress.
func (d *Decoder) InMessage() bool { return d.fragOp != 0 }

// Next decodes at most one frame from the start of b. It returns n == 0 when
// b does not hold a complete frame yet (nothing is consumed and the caller
// should wait for more bytes); otherwise n bytes were consumed. A non-nil err
// is a *CloseError: the connection must be closed with err.Code.
//
// Next unmasks the frame's payload in place in b.
func (d *Decoder) Next(b []byte) (n int, ev Event, err error) {
	d.Release()
	h, hs, err := ParseHeader(b)
	if err != nil || hs == 0 {
		return 0, ev, err
	}
	if err = d.check(&h); err != nil {
		return 0, ev, err
	}
	if int64(len(b)-hs) < h.Length {
		return 0, ev, nil
	}
	n = hs + int(h.Length)
	p := b[hs:n]
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	ev, err = d.frame(&h, p)
	return n, ev, err
}

// check validates a header before its payload is read.
func (d *Decoder) check(h *Header) error {
	if h.Rsv != 0 {
		if !d.Deflate || h.Rsv != 4 { // RSV1 is the only bit an extension gave a meaning
			return ErrReservedBits
		}
		switch {
		case h.Op >= OpClose:
			return ErrCompressedControl
		case h.Op == OpContinuation:
			return ErrCompressedCont
		}
	}
	if d.FromServer == h.Masked {
		if h.Masked {
			return ErrMasked
		}
		return ErrUnmasked
	}
	switch h.Op {
	case OpClose, OpPing, OpPong:
		if !h.Fin {
			return ErrControlFragmented
		}
		if h.Length > MaxControlPayload {
			return ErrControlTooLong
		}
		return nil
	case OpText, OpBinary:
		if d.fragOp != 0 {
			return ErrExpectedCont
		}
	case OpContinuation:
		if d.fragOp == 0 {
			return ErrUnexpectedCont
		}
	default:
		return ErrReservedOpcode
	}
	if d.MaxMessage > 0 {
		limit := int64(d.MaxMessage)
		if h.Rsv != 0 || (h.Op == OpContinuation && d.compressed) {
			limit += int64(compressedSlack(d.MaxMessage)) // the inflated size is checked as it grows
		}
		if int64(len(d.frag))+h.Length > limit {
			return ErrTooBig
		}
	}
	return nil
}

func (d *Decoder) frame(h *Header, p []byte) (Event, error) {
	switch h.Op {
	case OpPing:
		return Event{Kind: KindPing, Payload: p}, nil
	case OpPong:
		return Event{Kind: KindPong, Payload: p}, nil
	case OpClose:
		code, reason, err := ParseClosePayload(p)
		if err != nil {
			return Event{}, err
		}
		return Event{Kind: KindClose, Payload: reason, CloseCode: code}, nil
	}
	op := h.Op
	if op == OpContinuation {
		op = d.fragOp
	} else {
		d.compressed = h.Rsv != 0 // check let only RSV1 through, and only here
	}
	if op == OpText && !d.compressed && !d.utf8.Write(p) {
		return Event{}, ErrInvalidUTF8
	}
	if h.Fin && d.fragOp == 0 { // the common case: a whole message in one frame
		return d.finish(op, p)
	}
	if d.fragOp == 0 {
		d.fragOp = op
	}
	d.frag = append(d.frag, p...)
	if !h.Fin {
		return Event{}, nil
	}
	d.fragOp = 0
	ev, err := d.finish(op, d.frag)
	if cap(d.frag) > fragKeep {
		d.frag = nil // the event still aliases the old array; GC keeps it alive
	} else {
		d.frag = d.frag[:0]
	}
	return ev, err
}

func (d *Decoder) finish(op ws.OpCode, p []byte) (Event, error) {
	if d.compressed {
		d.compressed = false
		var err error
		if p, err = d.inflateMessage(p); err != nil {
			return Event{}, err
		}
		if op == OpText && !ValidUTF8(p) {
			return Event{}, ErrInvalidUTF8
		}
	} else if op == OpText {
		ok := d.utf8.Complete()
		d.utf8.Reset()
		if !ok {
			return Event{}, ErrInvalidUTF8
		}
	}
	if op == OpText {
		return Event{Kind: KindText, Payload: p}, nil
	}
	return Event{Kind: KindBinary, Payload: p}, nil
}
