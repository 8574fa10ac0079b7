// Package jscan walks the top level of a JSON object without decoding it.
//
// The load generator reads hundreds of thousands of server messages per
// second on one core; it needs three or four fields out of each, in whatever
// order and spacing the server chose. Iter yields each top-level key with the
// raw bytes of its value and allocates nothing. Keys are compared raw (escape
// sequences are not decoded), which is enough for the fixed ASCII keys of the
// dialects.
package jscan

import "bytes"

// Iter iterates over the members of one JSON object.
// The zero value is an exhausted iterator.
type Iter struct {
	b    []byte
	i    int
	done bool
	bad  bool
}

// Object starts iterating over the object in b (leading whitespace allowed).
// It reports false when b does not start with '{'.
func Object(b []byte) (Iter, bool) {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return Iter{done: true}, false
	}
	return Iter{b: b, i: i + 1}, true
}

// Next returns the next key (without quotes) and raw value. ok is false at
// the end of the object or on malformed input (see Err).
func (it *Iter) Next() (key, val []byte, ok bool) {
	if key, ok = it.NextKey(); !ok {
		return nil, nil, false
	}
	if val, ok = it.Value(); !ok {
		return nil, nil, false
	}
	return key, val, true
}

// NextKey returns the next key, leaving the iterator at the start of its
// value: Value must follow. ok is false at the end of the object (the
// iterator then rests on the closing brace, see End) or on malformed input.
func (it *Iter) NextKey() (key []byte, ok bool) {
	if it.done {
		return nil, false
	}
	b := it.b
	i := skipSpace(b, it.i)
	if i < len(b) && b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if i >= len(b) || b[i] != '"' {
		it.i, it.done = i, true
		it.bad = i >= len(b) || b[i] != '}'
		return nil, false
	}
	end := stringEnd(b, i)
	if end < 0 {
		return nil, it.fail()
	}
	key = b[i+1 : end-1]
	i = skipSpace(b, end)
	if i >= len(b) || b[i] != ':' {
		return nil, it.fail()
	}
	it.i = skipSpace(b, i+1)
	return key, true
}

// Value returns the raw value after NextKey.
func (it *Iter) Value() ([]byte, bool) {
	if it.done {
		return nil, false
	}
	end := ValueEnd(it.b, it.i)
	if end < 0 {
		return nil, it.fail()
	}
	v := it.b[it.i:end]
	it.i = end
	return v, true
}

// Rest returns the unread input after NextKey: the value and what
// follows it. A caller that parses the value itself calls Skip after.
func (it *Iter) Rest() []byte {
	if it.done {
		return nil
	}
	return it.b[it.i:]
}

// Skip advances past n bytes of a value the caller parsed from Rest.
func (it *Iter) Skip(n int) { it.i += n }

// End returns the offset just past the object's closing brace once Next or
// NextKey reported the end without error; otherwise -1.
func (it *Iter) End() int {
	if !it.done || it.bad {
		return -1
	}
	return it.i + 1
}

// Err reports whether iteration stopped on malformed input.
func (it *Iter) Err() bool { return it.bad }

func (it *Iter) fail() bool {
	it.bad, it.done = true, true
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\n' || b[i] == '\t' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string starting at b[i] == '"',
// or -1 when it is not terminated.
func stringEnd(b []byte, i int) int {
	j := i + 1
	// Keys and short values: a plain loop beats IndexByte's call.
	for lim := min(len(b), j+16); j < lim; j++ {
		switch b[j] {
		case '"':
			return j + 1
		case '\\':
			return stringEndSlow(b, i, j)
		}
	}
	return stringEndSlow(b, i, j)
}

// stringEndSlow finishes stringEnd from j, escapes and all.
func stringEndSlow(b []byte, i, j int) int {
	for {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1
		}
		j += k
		bs := 0
		for p := j - 1; p > i && b[p] == '\\'; p-- {
			bs++
		}
		j++
		if bs%2 == 0 {
			return j
		}
	}
}

// ValueEnd returns the index just past the JSON value starting at b[i], or
// -1 when the value is malformed or truncated. Containers are matched by
// bracket depth only; their contents are not validated.
func ValueEnd(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		return containerEnd(b, i)
	}
	j := i
	for j < len(b) {
		switch b[j] {
		case ',', '}', ']', ' ', '\n', '\t', '\r':
			if j == i {
				return -1
			}
			return j
		}
		j++
	}
	return j
}

func containerEnd(b []byte, i int) int {
	depth := 0
	for j := i; j < len(b); j++ {
		switch b[j] {
		case '"':
			e := stringEnd(b, j)
			if e < 0 {
				return -1
			}
			j = e - 1
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				return j + 1
			}
		}
	}
	return -1
}

// Unquote returns the contents of a JSON string value without its quotes,
// or nil when v is not a string. Escapes are left as they are.
func Unquote(v []byte) []byte {
	if len(v) < 2 || v[0] != '"' || v[len(v)-1] != '"' {
		return nil
	}
	return v[1 : len(v)-1]
}

// Int parses a JSON number as an integer. Numbers with a fraction or an
// exponent are converted through float64 (a server that re-encodes numbers
// as floats loses at most the last bits of a nanosecond timestamp).
func Int(v []byte) (int64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	neg := v[0] == '-'
	i := 0
	if neg {
		i = 1
	}
	if i == len(v) {
		return 0, false
	}
	var n int64
	for ; i < len(v); i++ {
		c := v[i]
		if c < '0' || c > '9' {
			return floatInt(v)
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// IntPrefix parses the JSON number at the start of b as an integer and
// returns how many bytes it spans. Fractions and exponents go through
// float64 as in Int.
func IntPrefix(b []byte) (v int64, n int, ok bool) {
	i := 0
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		i = 1
	}
	start := i
	for ; i < len(b); i++ {
		c := b[i]
		if c < '0' || c > '9' {
			break
		}
		v = v*10 + int64(c-'0')
	}
	if i == start {
		return 0, 0, false
	}
	if i < len(b) && (b[i] == '.' || b[i] == 'e' || b[i] == 'E') {
		end := ValueEnd(b, 0)
		if end < 0 {
			return 0, 0, false
		}
		v, ok = floatInt(b[:end])
		return v, end, ok
	}
	if neg {
		v = -v
	}
	return v, i, true
}

// ArrayLen counts the elements of a JSON array value, -1 if v is not one.
func ArrayLen(v []byte) int {
	if len(v) < 2 || v[0] != '[' {
		return -1
	}
	i := skipSpace(v, 1)
	if i < len(v) && v[i] == ']' {
		return 0
	}
	n := 0
	for i < len(v) {
		e := ValueEnd(v, i)
		if e < 0 {
			return -1
		}
		n++
		i = skipSpace(v, e)
		if i >= len(v) {
			return -1
		}
		if v[i] == ']' {
			return n
		}
		if v[i] != ',' {
			return -1
		}
		i = skipSpace(v, i+1)
	}
	return -1
}
