package codec

import (
	"encoding/binary"

	"github.com/gobwas/ws"
)

// Opcodes (RFC 6455 section 5.2), aliased from gobwas/ws.
const (
	OpContinuation = ws.OpContinuation
	OpText         = ws.OpText
	OpBinary       = ws.OpBinary
	OpClose        = ws.OpClose
	OpPing         = ws.OpPing
	OpPong         = ws.OpPong
)

// MaxControlPayload is the largest payload a control frame may carry.
const MaxControlPayload = 125

// MaxHeaderSize is the largest frame header: 2 + 8 (length) + 4 (mask).
const MaxHeaderSize = 14

// Header is a parsed frame header.
type Header struct {
	Fin    bool
	Rsv    uint8 // the three reserved bits, as bits 2..0
	Op     ws.OpCode
	Masked bool
	Mask   [4]byte
	Length int64
}

// ParseHeader parses a frame header from the start of b. It returns the
// header size, or 0 when b does not yet hold a complete header. err is a
// *CloseError for headers that can never be valid, whatever follows.
func ParseHeader(b []byte) (h Header, size int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	b0, b1 := b[0], b[1]
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 >> 4) & 0x7
	h.Op = ws.OpCode(b0 & 0x0f)
	h.Masked = b1&0x80 != 0
	size = 2
	switch l := b1 & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		size = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:10])
		if u>>63 != 0 {
			return h, 0, ErrLengthEncoding
		}
		h.Length = int64(u)
		size = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < size+4 {
			return h, 0, nil
		}
		copy(h.Mask[:], b[size:size+4])
		size += 4
	}
	return h, size, nil
}

// HeaderSize returns the size of an unmasked server frame header for a
// payload of n bytes.
func HeaderSize(n int) int {
	switch {
	case n <= 125:
		return 2
	case n <= 0xffff:
		return 4
	default:
		return 10
	}
}

// AppendFrame appends one unmasked (server-to-client) frame to dst.
func AppendFrame(dst []byte, fin bool, op ws.OpCode, payload []byte) []byte {
	dst = appendHeader(dst, fin, op, len(payload), false, [4]byte{})
	return append(dst, payload...)
}

// AppendMaskedFrame appends one masked (client-to-server) frame to dst.
func AppendMaskedFrame(dst []byte, fin bool, op ws.OpCode, payload []byte, mask [4]byte) []byte {
	dst = appendHeader(dst, fin, op, len(payload), true, mask)
	start := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[start:], mask, 0)
	return dst
}

func appendHeader(dst []byte, fin bool, op ws.OpCode, n int, masked bool, mask [4]byte) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	var m byte
	if masked {
		m = 0x80
	}
	switch {
	case n <= 125:
		dst = append(dst, b0, m|byte(n))
	case n <= 0xffff:
		dst = append(dst, b0, m|126, byte(n>>8), byte(n))
	default:
		dst = append(dst, b0, m|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(n))
	}
	if masked {
		dst = append(dst, mask[:]...)
	}
	return dst
}

// PutTextHeader writes the header of an unmasked final text frame whose
// payload of n bytes follows at dst[HeaderSize(n):]. dst must have room.
// It lets an encoder reserve the largest header, write the payload, then
// fill the header in without moving the payload: see Frame.
func PutTextHeader(dst []byte, n int) int {
	h := appendHeader(dst[:0], true, OpText, n, false, [4]byte{})
	return len(h)
}

// AppendClose appends a close frame with code and reason (truncated to fit
// the 125-byte control payload). Code 0 sends an empty close payload.
func AppendClose(dst []byte, code uint16, reason string) []byte {
	if code == 0 {
		return append(dst, 0x88, 0)
	}
	if len(reason) > MaxControlPayload-2 {
		reason = reason[:MaxControlPayload-2]
	}
	dst = append(dst, 0x88, byte(2+len(reason)), byte(code>>8), byte(code))
	return append(dst, reason...)
}

// ValidCloseCode reports whether code may appear in a close frame on the wire
// (RFC 6455 section 7.4 and the IANA registry).
func ValidCloseCode(code uint16) bool {
	switch {
	case code >= 1000 && code <= 1003:
		return true
	case code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// ParseClosePayload validates a close frame payload and returns its code
// (CloseNoStatus when empty) and reason.
func ParseClosePayload(p []byte) (code uint16, reason []byte, err error) {
	switch len(p) {
	case 0:
		return CloseNoStatus, nil, nil
	case 1:
		return 0, nil, ErrCloseLength
	}
	code = binary.BigEndian.Uint16(p)
	if !ValidCloseCode(code) {
		return 0, nil, ErrCloseCode
	}
	reason = p[2:]
	if !ValidUTF8(reason) {
		return 0, nil, ErrInvalidCloseUTF8
	}
	return code, reason, nil
}
