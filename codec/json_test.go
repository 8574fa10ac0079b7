package codec

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// replaced is s with every invalid UTF-8 byte replaced by U+FFFD, the way
// ranging over a string decodes it.
func replaced(s string) string {
	var b strings.Builder
	for _, r := range s {
		b.WriteRune(r)
	}
	return b.String()
}

// checkAppendString verifies AppendString(s) with encoding/json: the output
// is one valid JSON string, valid UTF-8, and decodes to s with invalid bytes
// replaced by U+FFFD.
func checkAppendString(t *testing.T, s string) []byte {
	t.Helper()
	prefix := []byte("[1,")
	out := AppendString(bytes.Clone(prefix), s)
	if !bytes.HasPrefix(out, prefix) {
		t.Fatalf("%q: prefix clobbered: %q", s, out)
	}
	lit := out[len(prefix):]
	if !utf8.Valid(lit) {
		t.Fatalf("%q: output %q is not valid UTF-8", s, lit)
	}
	if !json.Valid(lit) {
		t.Fatalf("%q: output %q is not valid JSON", s, lit)
	}
	var got string
	if err := json.Unmarshal(lit, &got); err != nil {
		t.Fatalf("%q: %q: %v", s, lit, err)
	}
	if want := replaced(s); got != want {
		t.Fatalf("%q: decodes to %q, want %q", s, got, want)
	}
	if b := AppendString(nil, []byte(s)); !bytes.Equal(b, lit) {
		t.Fatalf("%q: []byte form %q differs from string form %q", s, b, lit)
	}
	return lit
}

func TestAppendString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{`a"b`, `"a\"b"`},
		{`a\b`, `"a\\b"`},
		{"a\nb\rc\td", `"a\nb\rc\td"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"\x7f", "\"\x7f\""},
		{"<&>", `"<&>"`}, // no HTML escaping
		{"κόσμε", `"κόσμε"`},
		{"\U0010ffff", "\"\U0010ffff\""},
		{"\ufffd", "\"\ufffd\""}, // a real U+FFFD passes through
		{"\xff", `"\ufffd"`},
		{"a\xc3", `"a\ufffd"`},
		{"\xc3(", `"\ufffd("`},
		{"\xed\xa0\x80", `"\ufffd\ufffd\ufffd"`}, // surrogate: each byte replaced
		{"\xc0\xaf", `"\ufffd\ufffd"`},           // overlong
		{"\xf4\x90\x80\x80", `"\ufffd\ufffd\ufffd\ufffd"`},
		{"ok\xe2\x82", `"ok\ufffd\ufffd"`},
		{"\xe2\x82\xac\"", `"€\""`},
	}
	for _, c := range cases {
		if got := checkAppendString(t, c.in); string(got) != c.want {
			t.Errorf("AppendString(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestAppendStringRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 5000 {
		checkAppendString(t, string(randomText(r, r.IntN(40))))
	}
}

func TestAppendStringNoAlloc(t *testing.T) {
	s := []byte("plain ascii, \"quoted\", κόσμε and a bad byte \xff\n")
	dst := make([]byte, 0, 256)
	if a := testing.AllocsPerRun(100, func() { dst = AppendString(dst[:0], s) }); a != 0 {
		t.Fatalf("AppendString([]byte) into a preallocated buffer: %v allocs per run, want 0", a)
	}
	str := string(s)
	if a := testing.AllocsPerRun(100, func() { dst = AppendString(dst[:0], str) }); a != 0 {
		t.Fatalf("AppendString(string) into a preallocated buffer: %v allocs per run, want 0", a)
	}
}

func TestAppendInt(t *testing.T) {
	for _, v := range []int64{0, -1, 42, 1 << 62, -1 << 63} {
		var got int64
		if err := json.Unmarshal(AppendInt(nil, v), &got); err != nil || got != v {
			t.Errorf("AppendInt(%d): %v %d", v, err, got)
		}
	}
}

func TestStr(t *testing.T) {
	cases := []struct {
		raw  string
		want string
		ok   bool
	}{
		{`"abc"`, "abc", true},
		{`""`, "", true},
		{`"a\"b"`, `a"b`, true},
		{`"a\\b"`, `a\b`, true},
		{`"\u00e9\n"`, "é\n", true},
		{`"\ud83d\ude00"`, "😀", true},
		{`"κόσμε"`, "κόσμε", true},
		{`"\"`, "", false}, // an escaped closing quote: unterminated
		{`"\x"`, "", false},
		{`"`, "", false},
		{`"abc`, "", false},
		{`abc"`, "", false},
		{``, "", false},
		{`123`, "", false},
		{`null`, "", false},
		{`true`, "", false},
		{`["a"]`, "", false},
		{`{"a":"b"}`, "", false},
	}
	for _, c := range cases {
		got, ok := Str([]byte(c.raw))
		if ok != c.ok || got != c.want {
			t.Errorf("Str(%s) = %q, %v; want %q, %v", c.raw, got, ok, c.want, c.ok)
		}
	}
}

// Str agrees with encoding/json on every JSON string AppendString makes.
func TestStrRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		s := replaced(string(randomText(r, r.IntN(30))))
		got, ok := Str(AppendString(nil, s))
		if !ok || got != s {
			t.Fatalf("Str(AppendString(%q)) = %q, %v", s, got, ok)
		}
	}
}

// The result of Str does not change when the input buffer is reused.
func TestStrDoesNotAlias(t *testing.T) {
	raw := []byte(`"hello"`)
	s, ok := Str(raw)
	copy(raw, `"XXXXX"`)
	if !ok || s != "hello" {
		t.Fatalf("Str result changed with its input: %q", s)
	}
}

func TestStartFinishText(t *testing.T) {
	for _, n := range []int{0, 1, 125, 126, 127, 65535, 65536, 100000} {
		for _, pre := range []int{0, 3} {
			payload := bytes.Repeat([]byte{'j'}, n)
			if n > 0 {
				payload[0], payload[n-1] = '[', ']'
			}
			dst := bytes.Repeat([]byte{'P'}, pre) // unrelated bytes before the frame
			start := len(dst)
			dst = StartText(dst)
			dst = append(dst, payload...)
			frame := FinishText(dst, start)
			if !bytes.Equal(dst[:pre], bytes.Repeat([]byte{'P'}, pre)) {
				t.Fatalf("n=%d pre=%d: bytes before start clobbered", n, pre)
			}
			if &frame[len(frame)-1] != &dst[len(dst)-1] {
				t.Fatalf("n=%d pre=%d: frame is not a sub-slice ending at the payload", n, pre)
			}
			if want := rawFrame(0x81, payload, nil); !bytes.Equal(frame, want) {
				h, hs, err := ParseHeader(frame)
				t.Fatalf("n=%d pre=%d: frame differs from the reference (header %+v size %d err %v)", n, pre, h, hs, err)
			}
			var d Decoder
			d.FromServer = true
			m, ev, err := d.Next(bytes.Clone(frame))
			if err != nil || m != len(frame) || ev.Kind != KindText || !bytes.Equal(ev.Payload, payload) {
				t.Fatalf("n=%d pre=%d: decodes to kind %v, %d bytes, err %v", n, pre, ev.Kind, m, err)
			}
		}
	}
}

func TestPutTextHeader(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		dst := make([]byte, MaxHeaderSize)
		hs := PutTextHeader(dst, n)
		if hs != HeaderSize(n) {
			t.Fatalf("n=%d: header size %d, want %d", n, hs, HeaderSize(n))
		}
		h, size, err := ParseHeader(dst[:hs])
		if err != nil || size != hs || !h.Fin || h.Op != OpText || h.Masked || h.Length != int64(n) {
			t.Fatalf("n=%d: %+v size %d err %v", n, h, size, err)
		}
	}
}

func TestJSONConfig(t *testing.T) {
	if !ValidJSON([]byte(`{"a":[1,"x",null]}`)) || ValidJSON([]byte(`{"a":`)) || ValidJSON([]byte(`{} {}`)) {
		t.Fatal("ValidJSON disagrees with the JSON grammar")
	}
	raw := []byte(`{"s":"hello"}`)
	var v struct{ S string }
	if err := Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	copy(raw, `{"s":"XXXXX"}`)
	if v.S != "hello" {
		t.Fatalf("Unmarshal result aliases its input: %q", v.S)
	}
	// Invalid UTF-8 never survives decoding: it becomes U+FFFD (as with
	// encoding/json), so a decoded string is safe to put in a text frame.
	if err := Unmarshal([]byte("{\"s\":\"a\xffb\"}"), &v); err != nil || v.S != "a\ufffdb" {
		t.Fatalf("Unmarshal of invalid UTF-8: %q, %v; want \"a\\ufffdb\"", v.S, err)
	}
	out, err := Marshal(map[string]string{"k": "<&>"})
	if err != nil || string(out) != `{"k":"<&>"}` {
		t.Fatalf("Marshal: %s %v", out, err)
	}
}

// TestValidJSONStrict: raw control characters inside strings are invalid
// JSON (sonic's own validator lets them through).
func TestValidJSONStrict(t *testing.T) {
	for _, in := range []string{"{\"a\":\"x\x01y\"}", "\"\x1f\"", "{\"a\":\"x\ny\"}"} {
		if ValidJSON([]byte(in)) {
			t.Errorf("ValidJSON(%q) = true", in)
		}
	}
	if !ValidJSON([]byte(`{"a":"x\u0001y"}`)) {
		t.Error("escaped control character rejected")
	}
}
