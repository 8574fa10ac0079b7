package dialect

import (
	"bytes"

	"partyline/bench/internal/jscan"
	"partyline/codec"
)

// Dialects whose messages are strings (rooms' content, channels' text)
// carry the stamp as a JSON string that needs no escaping:
// "T I S K xxx" (send time, sender, sequence, slot, padding).

// appendTextStamp converts data, a stamp object written by AppendStamp,
// into the string form (quotes included) and appends it to dst.
func appendTextStamp(dst, data []byte) []byte {
	st, n, ok := scanStampFast(data)
	if !ok || n != len(data) {
		// Not ours: send it as an ordinary JSON string.
		return codec.AppendString(dst, string(data))
	}
	pad := 0
	if i := bytes.LastIndex(data, []byte(`,"p":"`)); i >= 0 {
		pad = len(data) - (i + 6) - 2
	}
	dst = append(dst, '"')
	dst = codec.AppendInt(dst, st.T)
	dst = append(dst, ' ')
	dst = codec.AppendInt(dst, st.I)
	dst = append(dst, ' ')
	dst = codec.AppendInt(dst, st.S)
	dst = append(dst, ' ')
	dst = codec.AppendInt(dst, st.K)
	dst = append(dst, ' ')
	for range pad {
		dst = append(dst, 'x')
	}
	return append(dst, '"')
}

// parseTextStamp reads the stamp from the contents of such a string
// (without its quotes).
func parseTextStamp(b []byte) (st Stamp, ok bool) {
	i := 0
	for _, dst := range [...]*int64{&st.T, &st.I, &st.S, &st.K} {
		v, n, ok := jscan.IntPrefix(b[i:])
		if !ok || i+n >= len(b) || b[i+n] != ' ' {
			return st, false
		}
		*dst = v
		i += n + 1
	}
	return st, true
}

// AppendTextStamp appends st as a JSON string "T I S K xxx" with pad 'x'.
func AppendTextStamp(dst []byte, st Stamp, pad int) []byte {
	return appendTextStamp(dst, AppendStamp(nil, st, pad))
}

// ParseTextStamp reads a stamp from the contents of a string written by
// AppendTextStamp (without its quotes).
func ParseTextStamp(b []byte) (Stamp, bool) { return parseTextStamp(b) }
