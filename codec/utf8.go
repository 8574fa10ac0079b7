package codec

// UTF8 validates UTF-8 incrementally: a text message may be split at any byte
// across fragments, and the validator carries the partial code point.
// The zero value is ready; state 0 means "at a code point boundary".
type UTF8 struct{ state uint8 }

const (
	utf8Accept = 0
	utf8Reject = 12
)

// Björn Höhrmann's DFA (http://bjoern.hoehrmann.de/utf-8/decoder/dfa/):
// byte classes, then transitions in units of 12.
var utf8Class = [256]uint8{
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9,
	7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
	8, 8, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
	10, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 4, 3, 3, 11, 6, 6, 6, 5, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8,
}

var utf8Trans = [108]uint8{
	0, 12, 24, 36, 60, 96, 84, 12, 12, 12, 48, 72,
	12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
	12, 0, 12, 12, 12, 12, 12, 0, 12, 0, 12, 12,
	12, 24, 12, 12, 12, 12, 12, 24, 12, 24, 12, 12,
	12, 12, 12, 12, 12, 12, 12, 24, 12, 12, 12, 12,
	12, 24, 12, 12, 12, 12, 12, 12, 12, 24, 12, 12,
	12, 12, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,
	12, 36, 12, 12, 12, 12, 12, 36, 12, 36, 12, 12,
	12, 36, 12, 12, 12, 12, 12, 12, 12, 12, 12, 12,
}

// Write feeds p and reports false as soon as the bytes so far cannot be the
// prefix of valid UTF-8. After a false the validator stays rejected.
func (u *UTF8) Write(p []byte) bool {
	s := u.state
	i := 0
	if s == utf8Accept {
		// ASCII fast path, 8 bytes at a time.
		for i+8 <= len(p) {
			if (uint64(p[i])|uint64(p[i+1])|uint64(p[i+2])|uint64(p[i+3])|
				uint64(p[i+4])|uint64(p[i+5])|uint64(p[i+6])|uint64(p[i+7]))&0x80 != 0 {
				break
			}
			i += 8
		}
	}
	for ; i < len(p); i++ {
		s = utf8Trans[s+utf8Class[p[i]]]
		if s == utf8Reject {
			u.state = s
			return false
		}
	}
	u.state = s
	return true
}

// Complete reports whether the input so far ends at a code point boundary.
func (u *UTF8) Complete() bool { return u.state == utf8Accept }

// Reset returns the validator to its initial state.
func (u *UTF8) Reset() { u.state = utf8Accept }

// ValidUTF8 reports whether p is complete, valid UTF-8.
func ValidUTF8(p []byte) bool {
	var u UTF8
	return u.Write(p) && u.Complete()
}
