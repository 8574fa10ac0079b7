package store

import (
	"encoding/binary"
	"time"
)

// ID is a message id: the acceptance time in Unix milliseconds in the high
// 48 bits and a sequence number in the low 16. IDs are assigned by the
// store's single writer, strictly increasing, and the last one is durable
// with every batch, so they sort by time and stay unique across restarts
// (even if the clock steps back).
type ID uint64

// crockford is Crockford's base32 alphabet: its order is byte order, so the
// fixed-width text form sorts like the number.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idLen is the length of an ID's text form (13 digits hold 65 bits).
const idLen = 13

// String is the 13-character text form used on the wire.
func (id ID) String() string {
	var b [idLen]byte
	v := uint64(id)
	for i := idLen - 1; i >= 0; i-- {
		b[i] = crockford[v&31]
		v >>= 5
	}
	return string(b[:])
}

// ParseID parses the text form; ok is false for anything else.
func ParseID(s string) (ID, bool) {
	if len(s) != idLen {
		return 0, false
	}
	var v uint64
	for i := 0; i < idLen; i++ {
		d := decodeDigit(s[i])
		if d < 0 || (i == 0 && d > 15) { // the first digit holds only 4 bits
			return 0, false
		}
		v = v<<5 | uint64(d)
	}
	return ID(v), v != 0
}

func decodeDigit(c byte) int {
	for i := 0; i < len(crockford); i++ {
		if crockford[i] == c {
			return i
		}
	}
	return -1
}

// Time is the acceptance time encoded in id.
func (id ID) Time() time.Time { return time.UnixMilli(int64(id >> 16)).UTC() }

// nextID returns the smallest id after last not earlier than now.
func nextID(last ID, now time.Time) ID {
	id := ID(uint64(now.UnixMilli()) << 16)
	if id <= last {
		id = last + 1
	}
	return id
}

func putID(b []byte, id ID) { binary.BigEndian.PutUint64(b, uint64(id)) }
