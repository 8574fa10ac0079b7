package presence

import (
	"time"

	"partyline/codec"
	"partyline/routing"
)

// TimeLayout is the ISO-8601 UTC form of every timestamp on /chat and
// /presence, with milliseconds.
const TimeLayout = "2006-01-02T15:04:05.000Z"

// AppendTime appends t as a JSON string in TimeLayout.
func AppendTime(b []byte, t time.Time) []byte {
	b = append(b, '"')
	b = t.UTC().AppendFormat(b, TimeLayout)
	return append(b, '"')
}

// MsgFrame encodes {"type":typ,"msg":msg}; the caller owns the reference.
func MsgFrame(typ, msg string) *routing.Frame {
	f := routing.NewText()
	f.AppendStr(`{"type":`)
	f.SetBuf(codec.AppendString(f.Buf(), typ))
	f.AppendStr(`,"msg":`)
	f.SetBuf(codec.AppendString(f.Buf(), msg))
	f.Append('}')
	return f.End()
}

// SendMsg sends {"type":typ,"msg":msg} to c. Any goroutine.
func SendMsg(c routing.Sender, typ, msg string) {
	f := MsgFrame(typ, msg)
	c.Send(f, false)
	f.Release()
}

// Error sends an ERROR reply. Any goroutine.
func Error(c routing.Sender, msg string) { SendMsg(c, "ERROR", msg) }

// Success sends a SUCCESS reply. Any goroutine.
func Success(c routing.Sender, msg string) { SendMsg(c, "SUCCESS", msg) }
