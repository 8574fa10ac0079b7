package dialect

import (
	"bytes"

	"partyline/codec"
)

// PartyV2 is the party-v2 dialect (Party-Sockets 2.x): party's messages
// with numeric slot indices for peers ("from", "index", "to") and a
// required maxClients. It has no leave (closing the socket is leaving):
// the embedded party leave is answered with an error.
type PartyV2 struct{ Party }

// Name implements Dialect.
func (PartyV2) Name() string { return "party-v2" }

// Path implements Dialect.
func (PartyV2) Path(string) string { return "/party-v2" }

// AppendCreate implements Dialect; maxClients <= 0 means no practical limit
// (party-v2 requires the field).
func (PartyV2) AppendCreate(dst []byte, clientID, _ string, maxClients int) []byte {
	if maxClients <= 0 {
		maxClients = 1 << 30
	}
	dst = append(dst, `{"type":"create","clientId":`...)
	dst = codec.AppendString(dst, clientID)
	dst = append(dst, `,"maxClients":`...)
	dst = codec.AppendInt(dst, int64(maxClients))
	return append(dst, '}')
}

// AppendSend implements Dialect; to is a slot index in decimal.
func (PartyV2) AppendSend(dst []byte, _, to string, data []byte) []byte {
	dst = append(dst, `{"type":"send",`...)
	if to != "" {
		dst = append(dst, `"to":`...)
		dst = append(dst, to...)
		dst = append(dst, ',')
	}
	dst = append(dst, `"data":`...)
	dst = append(dst, data...)
	return append(dst, '}')
}

// Parse implements Dialect.
func (PartyV2) Parse(p []byte) (Event, bool) {
	if ev, ok := parseV2MessageFast(p); ok {
		return ev, true
	}
	return parseGeneral(p)
}

// parseV2MessageFast reads {"type":"message","from":N,"data":STAMP}.
func parseV2MessageFast(p []byte) (Event, bool) {
	const head, mid = `{"type":"message","from":`, `,"data":`
	if len(p) < len(head) || string(p[:len(head)]) != head {
		return Event{}, false
	}
	rest := p[len(head):]
	j := bytes.IndexByte(rest, ',')
	if j <= 0 || len(rest)-j < len(mid) || string(rest[j:j+len(mid)]) != mid {
		return Event{}, false
	}
	return stampedMessage(rest[:j], rest[j+len(mid):])
}
