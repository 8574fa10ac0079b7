// Package msg decodes one client message of a JSON dialect and classifies
// a failure as invalid JSON or a valid JSON value of the wrong shape, the
// two error replies every JSON dialect distinguishes. Reader is the whole
// opening of a dialect's OnMessage (binary check, pooled request, decode,
// the failure replies in the dialect's words); SendError the error reply
// of the dialects that share {"type":"error","message":...}. Event loop
// only, like the OnMessage that calls them; Reader's pool is shared.
package msg

import (
	"github.com/bytedance/sonic"

	"partyline/codec"
	"partyline/routing"
)

// Result is the outcome of Decode.
type Result uint8

const (
	OK        Result = iota // a JSON object, decoded into the request
	NotObject               // valid JSON, but not an object (null included)
	Invalid                 // not valid JSON
)

// Decode decodes payload into req (a struct of sonic.NoCopyRawMessage
// fields, which alias payload) with codec.JSONNoCopy. Validation is
// strict: control characters inside strings are invalid JSON.
func Decode[T any](payload []byte, req *T) Result {
	if err := codec.UnmarshalNoCopy(payload, req); err == nil && isObject(payload) {
		return OK
	}
	var raw sonic.NoCopyRawMessage
	if codec.UnmarshalNoCopy(payload, &raw) == nil {
		return NotObject
	}
	return Invalid
}

// isObject reports whether the first non-whitespace byte opens an object.
func isObject(b []byte) bool {
	for _, c := range b {
		switch c {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return true
		default:
			return false
		}
	}
	return false
}

// ErrorFrame encodes {"type":"error","message":text}, the error reply of
// the party, rooms, channels, notify and echo dialects; the caller owns
// the returned reference.
func ErrorFrame(text string) *routing.Frame {
	f := routing.NewText()
	f.AppendStr(`{"type":"error","message":`)
	f.SetBuf(codec.AppendString(f.Buf(), text))
	f.Append('}')
	return f.End()
}

// SendError sends ErrorFrame(text) to c.
func SendError(c routing.Sender, text string) {
	f := ErrorFrame(text)
	c.Send(f, false)
	f.Release()
}
