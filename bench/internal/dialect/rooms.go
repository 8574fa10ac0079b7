package dialect

import (
	"bytes"

	"partyline/bench/internal/jscan"
	"partyline/codec"
)

// Rooms is the /rooms dialect (docs/protocols.md, "echo, rooms, notify": the
// ChatServer example): clients name rooms, join with a username, and a
// message reaches every member, the sender included. The stamp travels in
// content as a string ("T I S K xxx").
type Rooms struct{}

// Name implements Dialect.
func (Rooms) Name() string { return "rooms" }

// Path implements Dialect.
func (Rooms) Path(string) string { return "/rooms" }

// ServerNamesRooms implements Dialect.
func (Rooms) ServerNamesRooms() bool { return false }

// EchoesSender implements Dialect.
func (Rooms) EchoesSender() bool { return true }

// AppendCreate implements Dialect: creating is joining first.
func (d Rooms) AppendCreate(dst []byte, clientID, room string, _ int) []byte {
	return d.AppendJoin(dst, clientID, room)
}

// AppendJoin implements Dialect; the client id is the username.
func (Rooms) AppendJoin(dst []byte, clientID, room string) []byte {
	dst = append(dst, `{"type":"join","room":`...)
	dst = codec.AppendString(dst, room)
	dst = append(dst, `,"username":`...)
	dst = codec.AppendString(dst, clientID)
	return append(dst, '}')
}

// AppendLeave implements Dialect.
func (Rooms) AppendLeave(dst []byte, room string) []byte {
	dst = append(dst, `{"type":"leave","room":`...)
	dst = codec.AppendString(dst, room)
	return append(dst, '}')
}

// AppendSend implements Dialect. The dialect has no direct messages: to is
// ignored (the direct scenario is not supported).
func (Rooms) AppendSend(dst []byte, room, _ string, data []byte) []byte {
	dst = append(dst, `{"type":"message","room":`...)
	dst = codec.AppendString(dst, room)
	dst = append(dst, `,"content":`...)
	dst = appendTextStamp(dst, data)
	return append(dst, '}')
}

var roomsKinds = map[string]Kind{
	`"joined"`:     Joined,
	`"userJoined"`: PeerJoined,
	`"userLeft"`:   PeerLeft,
	`"message"`:    Message,
	`"error"`:      Error,
}

// Parse implements Dialect.
func (Rooms) Parse(p []byte) (Event, bool) {
	ev := Event{Members: -1}
	it, ok := jscan.Object(p)
	if !ok {
		return ev, false
	}
	var typ, msg []byte
	for {
		k, v, ok := it.Next()
		if !ok {
			break
		}
		switch string(k) {
		case "type":
			typ = v
		case "room":
			ev.Room = jscan.Unquote(v)
		case "user":
			ev.Peer = jscan.Unquote(v)
		case "content":
			ev.Data = v
		case "message":
			msg = v
		}
	}
	if it.Err() || typ == nil {
		return ev, false
	}
	if bytes.Equal(typ, []byte(`"message"`)) {
		ev.Kind = Message
		if len(ev.Data) >= 2 && ev.Data[0] == '"' {
			ev.Stamp, ev.HasStamp = parseTextStamp(ev.Data[1 : len(ev.Data)-1])
		}
		return ev, true
	}
	ev.Kind = roomsKinds[string(typ)]
	if ev.Kind == Error {
		ev.Text = jscan.Unquote(msg)
	}
	return ev, true
}
