package codec

import (
	"bytes"
	"compress/flate"
	"io"
	"sync"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// permessage-deflate (RFC 7692) without context takeover in either
// direction: every message is compressed on its own, so neither side keeps
// an LZ77 window between messages. The inflater and deflater (tens to
// hundreds of KB each) come from pools and are held only while one message
// is processed; an idle connection holds none.

// Errors of compressed messages.
var (
	ErrCompressedControl = protoErr("compressed control frame")
	ErrCompressedCont    = protoErr("RSV1 set on a continuation frame")
	ErrBadDeflate        = &CloseError{CloseInvalidPayload, "invalid compressed data"}
)

// inflater is a pooled decompressor with its input reader.
type inflater struct {
	src bytes.Reader
	r   *wsflate.Reader
}

// flateReader adapts compress/flate's decompressor to wsflate's reset
// interface so that wsflate.Reader reuses it instead of allocating anew.
type flateReader struct{ io.ReadCloser }

func (f flateReader) Reset(r io.Reader) { _ = f.ReadCloser.(flate.Resetter).Reset(r, nil) }

var inflaters = sync.Pool{New: func() any {
	z := &inflater{}
	z.r = wsflate.NewReader(&z.src, func(r io.Reader) wsflate.Decompressor {
		return flateReader{flate.NewReader(r)}
	})
	return z
}}

// outPool holds the buffers inflated messages are returned in.
var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// outKeep is the largest inflate buffer returned to the pool.
const outKeep = 256 << 10

// Inflate appends the decompression of p, one message's compressed
// payload (RFC 7692 section 7.2.2: the tail 00 00 ff ff is implied), to
// dst. More than limit bytes (limit > 0) is ErrTooBig, found as soon as the
// output crosses it, so a small message that inflates enormously (a zip
// bomb) costs at most limit bytes; data that is not DEFLATE is ErrBadDeflate.
func Inflate(dst, p []byte, limit int) ([]byte, error) {
	z := inflaters.Get().(*inflater)
	defer inflaters.Put(z)
	z.src.Reset(p)
	z.r.Reset(&z.src)
	base := len(dst)
	for {
		if len(dst) == cap(dst) {
			dst = append(dst, make([]byte, max(len(dst)-base, 512))...)[:len(dst)]
		}
		end := cap(dst)
		if limit > 0 {
			end = min(end, base+limit+1) // never more than one byte past the limit
		}
		n, err := z.r.Read(dst[len(dst):end])
		dst = dst[:len(dst)+n]
		if limit > 0 && len(dst)-base > limit {
			return dst, ErrTooBig
		}
		if err == io.EOF {
			return dst, nil
		}
		if err != nil {
			return dst, ErrBadDeflate
		}
	}
}

// deflater is a pooled compressor writing into an append buffer.
type deflater struct {
	out appendWriter
	w   *wsflate.Writer
}

type appendWriter struct{ b []byte }

func (a *appendWriter) Write(p []byte) (int, error) { a.b = append(a.b, p...); return len(p), nil }

var deflaters = sync.Pool{New: func() any {
	z := &deflater{}
	z.w = wsflate.NewWriter(&z.out, func(w io.Writer) wsflate.Compressor {
		fw, _ := flate.NewWriter(w, flate.BestSpeed) // a valid level never fails
		return fw
	})
	return z
}}

// AppendDeflate appends the compressed form of payload, as one
// permessage-deflate message without context takeover (the trailing
// 00 00 ff ff removed), to dst.
func AppendDeflate(dst, payload []byte) ([]byte, error) {
	z := deflaters.Get().(*deflater)
	defer deflaters.Put(z)
	z.out.b = dst
	z.w.Reset(&z.out)
	_, err := z.w.Write(payload)
	if err == nil {
		err = z.w.Flush()
	}
	dst, z.out.b = z.out.b, nil
	return dst, err
}

// AppendDeflatedFrame encodes payload as one compressed, unfragmented
// server data frame (RSV1 set) of opcode op into dst, which it reuses:
// the frame is dst[off:]. ok is false, and nothing is worth sending, when
// compression does not make the frame smaller.
func AppendDeflatedFrame(dst []byte, op ws.OpCode, payload []byte) (out []byte, off int, ok bool) {
	const room = 10 // the largest server header
	dst = append(dst[:0], make([]byte, room)...)
	dst, err := AppendDeflate(dst, payload)
	n := len(dst) - room
	if err != nil || n >= len(payload) {
		return dst[:0], 0, false
	}
	off = room - HeaderSize(n)
	appendHeader(dst[off:off], true, op, n, false, [4]byte{})
	dst[off] |= rsv1
	return dst, off, true
}

// rsv1 is the first header byte's RSV1 bit: "per-message compressed".
const rsv1 = 0x40

// inflateMessage replaces a complete compressed message by its inflation
// into a pooled buffer that the decoder returns at its next call.
func (d *Decoder) inflateMessage(p []byte) ([]byte, error) {
	if d.out == nil {
		d.out = outPool.Get().(*[]byte)
	}
	out, err := Inflate((*d.out)[:0], p, d.MaxMessage)
	*d.out = out
	return out, err
}

// Release returns the buffer of the last inflated message to its pool: the
// payload of that event is invalid afterwards. The server calls it after
// each read so that an idle connection holds no buffer; Next calls it too.
func (d *Decoder) Release() {
	if d.out == nil {
		return
	}
	if cap(*d.out) <= outKeep {
		*d.out = (*d.out)[:0]
		outPool.Put(d.out)
	}
	d.out = nil
}

// compressedSlack is how much larger than the inflated limit a compressed
// message may be: DEFLATE stores incompressible data in blocks of at most
// 65535 bytes with 5 bytes of header each.
func compressedSlack(limit int) int { return 5*(limit/16384+1) + 16 }
