package store

import (
	"encoding/binary"
	"errors"
)

// Key layout (every name is written as one length byte, then its bytes, so
// prefixes never run into each other):
//
//	h <conv> <^id:8>       message (value: encodeMessage); ^id makes the
//	                       newest message of a conversation sort first
//	m <group> <user>       group membership, scanned by group
//	u <user> <group>       the same membership, scanned by user
//	c <user> <partner>     one-to-one partners, both directions
//	z lastid               the last assigned ID
//
// where <conv> is  g <group>  or  d <a> <b>  with a <= b.
const (
	tagHistory = 'h'
	tagMember  = 'm'
	tagUser    = 'u'
	tagPartner = 'c'
)

var keyLastID = []byte("zlastid")

func appendName(b []byte, s string) []byte {
	b = append(b, byte(len(s)))
	return append(b, s...)
}

func appendConv(b []byte, c Conv) []byte {
	if c.group != "" {
		return appendName(append(b, 'g'), c.group)
	}
	return appendName(appendName(append(b, 'd'), c.a), c.b)
}

func historyPrefix(c Conv) []byte { return appendConv([]byte{tagHistory}, c) }

func messageKey(c Conv, id ID) []byte {
	k := historyPrefix(c)
	var b [8]byte
	putID(b[:], ^id)
	return append(k, b[:]...)
}

func idFromKey(k []byte) ID {
	return ^ID(binary.BigEndian.Uint64(k[len(k)-8:]))
}

func pairKey(tag byte, x, y string) []byte {
	return appendName(appendName([]byte{tag}, x), y)
}

func namePrefix(tag byte, x string) []byte { return appendName([]byte{tag}, x) }

// lastName decodes the final name of a key made by pairKey.
func lastName(k []byte, prefixLen int) (string, bool) {
	rest := k[prefixLen:]
	if len(rest) == 0 || int(rest[0]) != len(rest)-1 {
		return "", false
	}
	return string(rest[1:]), true
}

// prefixEnd is the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

const messageVersion = 1

// encodeMessage stores the message fields (the ID lives in the key).
func encodeMessage(m *Message) []byte {
	b := make([]byte, 0, 16+len(m.From)+len(m.To)+len(m.GroupID)+len(m.ChatID)+len(m.Content))
	b = append(b, messageVersion)
	for _, s := range [...]string{m.From, m.To, m.GroupID, m.ChatID, m.Content} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

var errCorrupt = errors.New("store: corrupt message record")

func decodeMessage(b []byte, m *Message) error {
	if len(b) == 0 || b[0] != messageVersion {
		return errCorrupt
	}
	b = b[1:]
	for _, dst := range [...]*string{&m.From, &m.To, &m.GroupID, &m.ChatID, &m.Content} {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return errCorrupt
		}
		*dst = string(b[k : k+int(n)])
		b = b[k+int(n):]
	}
	if len(b) != 0 {
		return errCorrupt
	}
	return nil
}
