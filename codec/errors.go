package codec

import "fmt"

// RFC 6455 section 7.4.1 close codes used by the codec and the server.
const (
	CloseNormal          uint16 = 1000
	CloseGoingAway       uint16 = 1001
	CloseProtocolError   uint16 = 1002
	CloseUnsupported     uint16 = 1003
	CloseNoStatus        uint16 = 1005 // never sent on the wire
	CloseAbnormal        uint16 = 1006 // never sent on the wire
	CloseInvalidPayload  uint16 = 1007
	ClosePolicyViolation uint16 = 1008
	CloseTooBig          uint16 = 1009
	CloseMandatoryExt    uint16 = 1010
	CloseInternalError   uint16 = 1011
)

// CloseError is a protocol violation found while decoding: the connection
// must be closed with Code, and Reason is a short human text (<= 123 bytes).
type CloseError struct {
	Code   uint16
	Reason string
}

func (e *CloseError) Error() string { return fmt.Sprintf("websocket: %d %s", e.Code, e.Reason) }

func protoErr(reason string) *CloseError { return &CloseError{CloseProtocolError, reason} }

// Sentinel decode errors; each carries the close code the RFC prescribes.
var (
	ErrReservedBits      = protoErr("reserved bits set")
	ErrReservedOpcode    = protoErr("reserved opcode")
	ErrUnmasked          = protoErr("client frame not masked")
	ErrMasked            = protoErr("server frame masked")
	ErrControlTooLong    = protoErr("control frame payload over 125 bytes")
	ErrControlFragmented = protoErr("fragmented control frame")
	ErrUnexpectedCont    = protoErr("continuation frame without a message")
	ErrExpectedCont      = protoErr("new data frame inside a fragmented message")
	ErrLengthEncoding    = protoErr("invalid payload length")
	ErrCloseLength       = protoErr("close payload of 1 byte")
	ErrCloseCode         = protoErr("invalid close code")
	ErrInvalidUTF8       = &CloseError{CloseInvalidPayload, "invalid UTF-8 in text message"}
	ErrInvalidCloseUTF8  = &CloseError{CloseInvalidPayload, "invalid UTF-8 in close reason"}
	ErrTooBig            = &CloseError{CloseTooBig, "message too big"}
)
