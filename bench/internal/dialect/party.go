package dialect

import (
	"bytes"

	"partyline/bench/internal/jscan"
	"partyline/codec"
)

// Party is the party dialect (docs/protocols.md, section "party"): the server
// names rooms with a code in reply to create, members join by code, and a
// send reaches every other member, or one member named by "to".
type Party struct{}

// Name implements Dialect.
func (Party) Name() string { return "party" }

// Path implements Dialect.
func (Party) Path(string) string { return "/party" }

// ServerNamesRooms implements Dialect.
func (Party) ServerNamesRooms() bool { return true }

// EchoesSender implements Dialect.
func (Party) EchoesSender() bool { return false }

// AppendCreate implements Dialect; maxClients <= 0 leaves the server default.
func (Party) AppendCreate(dst []byte, clientID, _ string, maxClients int) []byte {
	dst = append(dst, `{"type":"create","clientId":`...)
	dst = codec.AppendString(dst, clientID)
	if maxClients > 0 {
		dst = append(dst, `,"maxClients":`...)
		dst = codec.AppendInt(dst, int64(maxClients))
	}
	return append(dst, '}')
}

// AppendJoin implements Dialect.
func (Party) AppendJoin(dst []byte, clientID, room string) []byte {
	dst = append(dst, `{"type":"join","clientId":`...)
	dst = codec.AppendString(dst, clientID)
	dst = append(dst, `,"room":`...)
	dst = codec.AppendString(dst, room)
	return append(dst, '}')
}

// AppendLeave implements Dialect.
func (Party) AppendLeave(dst []byte, _ string) []byte {
	return append(dst, `{"type":"leave"}`...)
}

// AppendSend implements Dialect.
func (Party) AppendSend(dst []byte, _, to string, data []byte) []byte {
	dst = append(dst, `{"type":"send",`...)
	if to != "" {
		dst = append(dst, `"to":`...)
		dst = codec.AppendString(dst, to)
		dst = append(dst, ',')
	}
	dst = append(dst, `"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

var partyKinds = map[string]Kind{
	`"created"`:     Created,
	`"joined"`:      Joined,
	`"peer_joined"`: PeerJoined,
	`"peer_left"`:   PeerLeft,
	`"message"`:     Message,
	`"error"`:       Error,
}

// Parse implements Dialect.
func (Party) Parse(p []byte) (Event, bool) {
	if ev, ok := parseMessageFast(p); ok {
		return ev, true
	}
	return parseGeneral(p)
}

// parseGeneral handles any field order and spacing.
func parseGeneral(p []byte) (Event, bool) {
	ev := Event{Members: -1}
	it, ok := jscan.Object(p)
	if !ok {
		return ev, false
	}
	var typ []byte
	for {
		k, ok := it.NextKey()
		if !ok {
			break
		}
		if string(k) == "data" {
			if rest := it.Rest(); len(rest) > 0 && rest[0] == '{' {
				if st, n, ok := ScanStamp(rest); ok {
					ev.Data, ev.Stamp, ev.HasStamp = rest[:n], st, true
					it.Skip(n)
					continue
				}
			}
		}
		v, ok := it.Value()
		if !ok {
			break
		}
		switch string(k) {
		case "type":
			typ = v
		case "room":
			ev.Room = jscan.Unquote(v)
		case "clientId", "from", "index": // party-v2: numbers
			if ev.Peer = jscan.Unquote(v); ev.Peer == nil {
				ev.Peer = v
			}
		case "data":
			ev.Data = v
		case "message":
			ev.Text = jscan.Unquote(v)
		case "clients":
			ev.Members = jscan.ArrayLen(v)
		case "peers": // party-v2: the others
			ev.Members = jscan.ArrayLen(v) + 1
		}
	}
	if it.Err() || typ == nil {
		return ev, false
	}
	if bytes.Equal(typ, []byte(`"message"`)) { // the hot path: skip the map
		ev.Kind = Message
	} else {
		ev.Kind = partyKinds[string(typ)]
	}
	return ev, true
}

// parseMessageFast reads a relayed message in the canonical form
// {"type":"message","from":"ID","data":STAMP} (keys in this order, no
// spaces); anything else goes through the general parser.
func parseMessageFast(p []byte) (Event, bool) {
	const head, mid = `{"type":"message","from":"`, `","data":`
	if len(p) < len(head) || string(p[:len(head)]) != head {
		return Event{}, false
	}
	rest := p[len(head):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 || len(rest)-j < len(mid) || string(rest[j:j+len(mid)]) != mid {
		return Event{}, false
	}
	return stampedMessage(rest[:j], rest[j+len(mid):])
}

// stampedMessage is the Message event of a fast-parsed frame: from, and
// data that must be exactly a stamp followed by the closing '}'.
func stampedMessage(from, data []byte) (Event, bool) {
	st, n, ok := scanStampFast(data)
	if !ok || n != len(data)-1 || data[n] != '}' {
		return Event{}, false
	}
	return Event{Kind: Message, Peer: from, Data: data[:n], Stamp: st, HasStamp: true, Members: -1}, true
}
