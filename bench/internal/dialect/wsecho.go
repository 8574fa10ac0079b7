package dialect

import "partyline/codec"

// WSEcho drives partyline's raw echo endpoint (/wsecho), which sends every
// message back to its sender unchanged. It speaks the rooms dialect's
// format so that the echoes read as that dialect's replies: a join comes
// back as "joined", a send as the sender's own "message". Each connection
// is a room of its own: run it with --room-size 1 (every send is then
// expected once, by its sender).
type WSEcho struct{ Rooms }

// Name implements Dialect.
func (WSEcho) Name() string { return "wsecho" }

// Path implements Dialect.
func (WSEcho) Path(string) string { return "/wsecho" }

// AppendCreate implements Dialect: creating is joining.
func (d WSEcho) AppendCreate(dst []byte, clientID, room string, _ int) []byte {
	return d.AppendJoin(dst, clientID, room)
}

// AppendJoin implements Dialect: the echo of this is the "joined" reply.
func (WSEcho) AppendJoin(dst []byte, clientID, room string) []byte {
	dst = append(dst, `{"type":"joined","room":`...)
	dst = codec.AppendString(dst, room)
	dst = append(dst, `,"user":`...)
	dst = codec.AppendString(dst, clientID)
	return append(dst, '}')
}

// AppendSend is the rooms dialect's: the echo of a send is the delivery.
