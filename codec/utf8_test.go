package codec

import (
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// interesting are byte sequences at and around the edges of UTF-8.
var interesting = []string{
	"\x00", "a", "\x7f", "\x80", "\xbf", "\xc0", "\xc1", "\xc2\x80", "\xdf\xbf",
	"\xe0\x9f\xbf", "\xe0\xa0\x80", "\xed\x9f\xbf", "\xed\xa0\x80", "\xed\xbf\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
	"\xf0\x8f\xbf\xbf", "\xf0\x90\x80\x80", "\xf4\x8f\xbf\xbf", "\xf4\x90\x80\x80", "\xf5", "\xf8\x88\x80\x80\x80",
	"\xfe", "\xff", "κόσμε", "\ufffd", "\xe2\x82", "\xf0\x9f", "\xf0\x9f\x98",
}

// randomText returns n pieces of text biased towards UTF-8 edge cases:
// runs of ASCII (for the 8-byte fast path), valid runes, edge sequences
// and random bytes.
func randomText(r *rand.Rand, n int) []byte {
	var b []byte
	for range n {
		switch r.IntN(5) {
		case 0:
			for k := r.IntN(20); k > 0; k-- {
				b = append(b, byte(0x20+r.IntN(0x5f)))
			}
		case 1:
			b = utf8.AppendRune(b, rune(r.IntN(0x110000)))
		case 2:
			b = append(b, interesting[r.IntN(len(interesting))]...)
		case 3:
			b = append(b, byte(r.IntN(256)))
		default:
			b = append(b, byte(0x80|r.IntN(0x40))) // a continuation byte
		}
	}
	return b
}

// validPrefix reports whether p can be extended to valid UTF-8: p is valid
// up to a trailing incomplete code point that some bytes would complete.
// Only the second byte of a sequence has a narrower range than 80..BF, so
// trying every second byte with 80 after it decides.
func validPrefix(p []byte) bool {
	if utf8.Valid(p) {
		return true
	}
	for k := 1; k <= 3 && k <= len(p); k++ {
		head, tail := p[:len(p)-k], p[len(p)-k:]
		if !utf8.Valid(head) || !utf8.RuneStart(tail[0]) {
			continue
		}
		for c := 0x80; c <= 0xbf; c++ {
			q := append([]byte(nil), tail...)
			if k == 1 {
				q = append(q, byte(c))
			}
			for len(q) < 4 && !utf8.FullRune(q) {
				q = append(q, 0x80)
			}
			if utf8.FullRune(q) && utf8.Valid(q) {
				return true
			}
		}
	}
	return false
}

// checkUTF8 compares the validator with unicode/utf8 on p: whole, and split
// at every point into two writes. It also checks that Write fails exactly
// when the bytes so far stop being a valid prefix.
func checkUTF8(t testing.TB, p []byte) {
	want := utf8.Valid(p)
	if got := ValidUTF8(p); got != want {
		t.Fatalf("ValidUTF8(%q) = %v, utf8.Valid = %v", p, got, want)
	}
	for i := 0; i <= len(p); i++ {
		var u UTF8
		ok := u.Write(p[:i])
		if ok != validPrefix(p[:i]) {
			t.Fatalf("Write(%q) = %v, valid prefix = %v", p[:i], ok, validPrefix(p[:i]))
		}
		ok = ok && u.Write(p[i:])
		if got := ok && u.Complete(); got != want {
			t.Fatalf("%q split at %d: %v, utf8.Valid = %v", p, i, got, want)
		}
	}
	// Byte by byte: Write fails at the first byte after which no valid
	// continuation exists, and stays failed.
	var u UTF8
	failed := false
	for i := range p {
		ok := u.Write(p[i : i+1])
		if failed && ok {
			t.Fatalf("%q: Write succeeded at %d after a failure", p, i)
		}
		if !failed && ok != validPrefix(p[:i+1]) {
			t.Fatalf("%q: byte %d: Write = %v, valid prefix = %v", p, i, ok, validPrefix(p[:i+1]))
		}
		failed = failed || !ok
	}
}

func TestUTF8Interesting(t *testing.T) {
	for _, a := range interesting {
		checkUTF8(t, []byte(a))
		for _, b := range interesting {
			checkUTF8(t, []byte(a+b))
			checkUTF8(t, []byte("0123456789"+a+"abcdefghij"+b)) // through the ASCII fast path
		}
	}
}

func TestUTF8Random(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for range 20000 {
		checkUTF8(t, randomText(r, r.IntN(12)))
	}
}

// Every bad byte position around the 8-byte ASCII fast path is found.
func TestUTF8FastPathBoundaries(t *testing.T) {
	for n := 0; n < 40; n++ {
		for i := 0; i < n; i++ {
			for _, bad := range []byte{0x80, 0xff, 0xc3} {
				p := make([]byte, n)
				for j := range p {
					p[j] = 'a'
				}
				p[i] = bad
				checkUTF8(t, p)
			}
		}
	}
}

func TestUTF8AllTwoAndThreeBytePrefixes(t *testing.T) {
	if testing.Short() {
		t.Skip("exhaustive")
	}
	p := make([]byte, 3)
	for a := 0xc0; a < 0x100; a++ {
		for b := 0x70; b < 0xd0; b++ {
			p[0], p[1] = byte(a), byte(b)
			checkUTF8(t, p[:2])
			for _, c := range []byte{0x7f, 0x80, 0xbf, 0xc0} {
				p[2] = c
				checkUTF8(t, p)
			}
		}
	}
}

func TestUTF8Reset(t *testing.T) {
	var u UTF8
	if u.Write([]byte("\xce")) != true || u.Complete() {
		t.Fatal("a lead byte is a valid, incomplete prefix")
	}
	u.Reset()
	if !u.Complete() || !u.Write([]byte("a")) {
		t.Fatal("Reset does not return to the initial state")
	}
	if u.Write([]byte("\xff")) || u.Write([]byte("a")) {
		t.Fatal("a rejected validator accepted more input")
	}
	u.Reset()
	if !u.Write([]byte("ok")) || !u.Complete() {
		t.Fatal("Reset does not clear a rejection")
	}
}

func TestUTF8NoAlloc(t *testing.T) {
	p := []byte("a fairly long line of ASCII text, then κόσμε and \U0001f600")
	if a := testing.AllocsPerRun(100, func() { ValidUTF8(p) }); a != 0 {
		t.Fatalf("ValidUTF8: %v allocs per run", a)
	}
}
