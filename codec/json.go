package codec

import (
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/bytedance/sonic"
	"github.com/bytedance/sonic/decoder"
)

// JSON is the sonic configuration every dialect decodes and encodes with:
// standard-library compatible output, strings copied out of the input (so a
// decoded value never aliases a network buffer), invalid UTF-8 in strings replaced by U+FFFD.
var JSON = sonic.Config{
	EscapeHTML:              false,
	CopyString:              true,
	ValidateString:          true,
	NoValidateJSONMarshaler: false,
}.Froze()

// Unmarshal decodes data into v with the shared configuration.
func Unmarshal(data []byte, v any) error { return JSON.Unmarshal(data, v) }

// Marshal encodes v with the shared configuration.
func Marshal(v any) ([]byte, error) { return JSON.Marshal(v) }

// ValidJSON reports whether data is one valid JSON value, strictly (sonic's
// validator lets raw control characters through strings). Used on error
// paths only, to tell "invalid JSON" from "valid JSON of the wrong shape".
func ValidJSON(data []byte) bool { return json.Valid(data) }

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string literal. Invalid UTF-8 bytes are
// replaced by U+FFFD so the output is always valid JSON and valid UTF-8.
func AppendString[S string | []byte](dst []byte, s S) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(string(s[i:min(i+utf8.UTFMax, len(s))]))
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendInt appends a decimal integer.
func AppendInt(dst []byte, v int64) []byte { return strconv.AppendInt(dst, v, 10) }

// textGap is the room StartText reserves for the largest server header.
const textGap = 10

// StartText begins a text frame in dst: it reserves room for the header so
// that the payload can be appended directly. Finish it with FinishText(dst,
// start) where start is len(dst) before the call.
func StartText(dst []byte) []byte { return append(dst, make([]byte, textGap)...) }

// FinishText writes the header in front of the payload appended since
// StartText and returns the complete frame (a sub-slice of dst).
func FinishText(dst []byte, start int) []byte {
	n := len(dst) - start - textGap
	hs := HeaderSize(n)
	off := start + textGap - hs
	PutTextHeader(dst[off:], n)
	return dst[off:]
}

// JSONNoCopy decodes like JSON but lets decoded strings and
// sonic.NoCopyRawMessage values alias the input: use it only where the
// result is dropped before the input buffer is released.
var JSONNoCopy = sonic.Config{
	CopyString:     false,
	ValidateString: true,
}.Froze()

// noCopyDecoders are reusable sonic decoders with JSONNoCopy's options:
// sonic's Unmarshal copies its input and allocates a decoder per call.
var noCopyDecoders = sync.Pool{New: func() any {
	d := decoder.NewDecoder("")
	d.SetOptions(decoder.OptionValidateString)
	return d
}}

// UnmarshalNoCopy decodes data into v like JSONNoCopy, without copying data
// and without allocating a decoder: decoded strings and raw messages alias
// data and are valid only while data is.
func UnmarshalNoCopy(data []byte, v any) error {
	d := noCopyDecoders.Get().(*decoder.Decoder)
	defer noCopyDecoders.Put(d)
	if len(data) == 0 {
		d.Reset("")
	} else {
		d.Reset(unsafe.String(&data[0], len(data)))
	}
	err := d.Decode(v)
	if err == nil {
		err = d.CheckTrailings()
	}
	d.Reset("")
	return err
}

// StrRaw returns the bytes of a raw JSON string that has no escapes (so
// its bytes are its value), without copying; ok is false otherwise.
func StrRaw(raw []byte) (b []byte, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' {
			return nil, false
		}
	}
	return inner, true
}

// Str interprets a raw JSON value as a string: ok is false when raw is not
// a JSON string. The result may alias raw when it has no escapes.
func Str(raw []byte) (s string, ok bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	inner := raw[1 : len(raw)-1]
	simple := true
	for _, c := range inner {
		if c == '\\' {
			simple = false
			break
		}
	}
	if simple {
		return string(inner), true
	}
	if err := JSON.UnmarshalFromString(string(raw), &s); err != nil {
		return "", false
	}
	return s, true
}
