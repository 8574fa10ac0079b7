package dialect

import (
	"bytes"

	"partyline/bench/internal/jscan"
	"partyline/codec"
)

// Stamp is what every generated message carries in its data so that a
// receiver can measure latency and account for the message.
type Stamp struct {
	T int64 // send time, Unix nanoseconds (wall clock, comparable across processes)
	I int64 // sender: global client index within the run
	S int64 // sender's sequence number, from 1
	K int64 // sender's slot in its room (for per-sender order checks)
}

// AppendStamp appends the stamp as a JSON object padded with a string of
// pad 'x' bytes: {"t":T,"i":I,"s":S,"k":K,"p":"xxx"}.
func AppendStamp(dst []byte, st Stamp, pad int) []byte {
	dst = append(dst, `{"t":`...)
	dst = codec.AppendInt(dst, st.T)
	dst = append(dst, `,"i":`...)
	dst = codec.AppendInt(dst, st.I)
	dst = append(dst, `,"s":`...)
	dst = codec.AppendInt(dst, st.S)
	dst = append(dst, `,"k":`...)
	dst = codec.AppendInt(dst, st.K)
	dst = append(dst, `,"p":"`...)
	for range pad {
		dst = append(dst, 'x')
	}
	return append(dst, `"}`...)
}

// ParseStamp reads a stamp back from a message's data value.
func ParseStamp(data []byte) (st Stamp, ok bool) {
	st, n, ok := ScanStamp(data)
	return st, ok && n > 0
}

// ScanStamp parses the stamp object at the start of b and returns the
// number of bytes it spans, so that a dialect parser can read the stamp
// while it walks the message instead of skipping data and parsing it again.
func ScanStamp(b []byte) (st Stamp, n int, ok bool) {
	if st, n, ok = scanStampFast(b); ok {
		return st, n, true
	}
	return scanStampGeneral(b)
}

func scanStampGeneral(b []byte) (st Stamp, n int, ok bool) {
	it, ok := jscan.Object(b)
	if !ok {
		return st, 0, false
	}
	seen := 0
	for {
		k, ok := it.NextKey()
		if !ok {
			break
		}
		var dst *int64
		if len(k) == 1 {
			switch k[0] {
			case 't':
				dst = &st.T
			case 'i':
				dst = &st.I
			case 's':
				dst = &st.S
			case 'k':
				dst = &st.K
			}
		}
		if dst == nil {
			if _, ok := it.Value(); !ok {
				return st, 0, false
			}
			continue
		}
		v, n, ok := jscan.IntPrefix(it.Rest())
		if !ok {
			return st, 0, false
		}
		*dst = v
		it.Skip(n)
		seen++
	}
	n = it.End()
	return st, n, n > 0 && seen == 4
}

// scanStampFast parses the stamp exactly as AppendStamp writes it, which is
// how a server that relays data verbatim delivers it; anything else is
// left to the general scanner.
func scanStampFast(b []byte) (st Stamp, n int, ok bool) {
	i := 0
	for _, f := range [...]struct {
		key string
		dst *int64
	}{{`{"t":`, &st.T}, {`,"i":`, &st.I}, {`,"s":`, &st.S}, {`,"k":`, &st.K}} {
		if len(b)-i < len(f.key) || string(b[i:i+len(f.key)]) != f.key {
			return st, 0, false
		}
		i += len(f.key)
		v, m, ok := jscan.IntPrefix(b[i:])
		if !ok {
			return st, 0, false
		}
		*f.dst = v
		i += m
	}
	if len(b)-i < 6 || string(b[i:i+6]) != `,"p":"` {
		return st, 0, false
	}
	i += 6
	j := bytes.IndexByte(b[i:], '"') // the padding is all 'x'
	if j < 0 || len(b)-(i+j) < 2 || b[i+j+1] != '}' {
		return st, 0, false
	}
	if bytes.IndexByte(b[i:i+j], '\\') >= 0 {
		return st, 0, false
	}
	return st, i + j + 2, true
}

// AppendSized appends a send of st whose payload is size bytes long (when
// size exceeds the unpadded message; otherwise the message is as short as
// it can be). scratch is reused for the data value and returned.
func AppendSized(d Dialect, dst, scratch []byte, room, to string, st Stamp, size int) (out, scratch2 []byte) {
	start := len(dst)
	scratch = AppendStamp(scratch[:0], st, 0)
	dst = d.AppendSend(dst, room, to, scratch)
	if pad := size - (len(dst) - start); pad > 0 {
		scratch = AppendStamp(scratch[:0], st, pad)
		dst = d.AppendSend(dst[:start], room, to, scratch)
	}
	return dst, scratch
}
