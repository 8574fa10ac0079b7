package dialect

import (
	"bytes"
	"net/url"

	"partyline/bench/internal/jscan"
	"partyline/codec"
)

// Channels is the channels dialect (docs/protocols.md, "channels": the
// ws-chat-server seed): one channel per path /channels/{name} (a room is a
// channel), a client claims a name with identity, answers the server's
// heartbeats, and a message reaches every connection in the channel, the
// sender included. The server lets a connection send only some time after
// its identity (--channels-auth-delay, 5 s by default): run the server with
// a short delay, or give the generator a longer --warmup. The stamp travels
// in text as a string ("T I S K xxx").
type Channels struct{}

// Name implements Dialect.
func (Channels) Name() string { return "channels" }

// Path implements Dialect.
func (Channels) Path(room string) string { return "/channels/" + url.PathEscape(room) }

// ServerNamesRooms implements Dialect.
func (Channels) ServerNamesRooms() bool { return false }

// EchoesSender implements Dialect.
func (Channels) EchoesSender() bool { return true }

// AppendCreate implements Dialect: the channel exists from its first
// connection; the member claims its name.
func (d Channels) AppendCreate(dst []byte, clientID, room string, _ int) []byte {
	return d.AppendJoin(dst, clientID, room)
}

// AppendJoin implements Dialect: the channel is the path; this claims the
// client id as the connection's name (1-32 bytes).
func (Channels) AppendJoin(dst []byte, clientID, _ string) []byte {
	dst = append(dst, `{"type":"identity","user":`...)
	dst = codec.AppendString(dst, clientID)
	return append(dst, '}')
}

// AppendLeave implements Dialect: leaving a channel is closing the
// connection; nothing to send (an unknown type would be an error).
func (Channels) AppendLeave(dst []byte, _ string) []byte { return dst }

// AppendSend implements Dialect. There are no direct messages: to is
// ignored.
func (Channels) AppendSend(dst []byte, _, _ string, data []byte) []byte {
	dst = append(dst, `{"type":"message","text":`...)
	dst = appendTextStamp(dst, data)
	return append(dst, '}')
}

var heartbeatReply = []byte(`{"type":"heartbeat"}`)

// Parse implements Dialect. A heartbeat is Other with Reply set.
func (Channels) Parse(p []byte) (Event, bool) {
	ev := Event{Members: -1}
	it, ok := jscan.Object(p)
	if !ok {
		return ev, false
	}
	var typ, msg, success []byte
	for {
		k, v, ok := it.Next()
		if !ok {
			break
		}
		switch string(k) {
		case "type":
			typ = v
		case "user":
			ev.Peer = jscan.Unquote(v)
		case "text":
			ev.Data = v
		case "message":
			msg = v
		case "success":
			success = v
		}
	}
	if it.Err() || typ == nil {
		return ev, false
	}
	switch string(typ) {
	case `"message"`:
		ev.Kind = Message
		if len(ev.Data) >= 2 && ev.Data[0] == '"' {
			ev.Stamp, ev.HasStamp = parseTextStamp(ev.Data[1 : len(ev.Data)-1])
		}
	case `"heartbeat"`:
		ev.Reply = heartbeatReply
	case `"identity"`:
		if bytes.Equal(success, []byte(`"true"`)) {
			ev.Kind = Joined
		} else {
			ev.Kind = Error
			ev.Text = []byte("identity refused")
		}
	case `"error"`:
		ev.Kind = Error
		ev.Text = jscan.Unquote(msg)
	}
	return ev, true
}
