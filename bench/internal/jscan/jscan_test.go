package jscan

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestObject(t *testing.T) {
	in := `  { "a" : 1 , "b":"x\"}y\\" ,"c":{"d":[1,{"e":"]"}]},"f":[],"g":null,"h":-2.5e3}`
	it, ok := Object([]byte(in))
	if !ok {
		t.Fatal("not an object")
	}
	want := [][2]string{{"a", "1"}, {"b", `"x\"}y\\"`}, {"c", `{"d":[1,{"e":"]"}]}`}, {"f", "[]"}, {"g", "null"}, {"h", "-2.5e3"}}
	for _, w := range want {
		k, v, ok := it.Next()
		if !ok || string(k) != w[0] || string(v) != w[1] {
			t.Fatalf("Next = %q %q %v, want %q %q", k, v, ok, w[0], w[1])
		}
	}
	if _, _, ok := it.Next(); ok || it.Err() {
		t.Fatalf("end: ok %v err %v", ok, it.Err())
	}
	if it.End() != len(in) {
		t.Fatalf("End %d, want %d", it.End(), len(in))
	}
}

func TestMalformed(t *testing.T) {
	for _, in := range []string{`{`, `{"a"`, `{"a":`, `{"a":1`, `{"a" 1}`, `{"a":"x}`, `{"a":{"b":1}`, `{1:2}`, `{"a":}`} {
		it, ok := Object([]byte(in))
		if !ok {
			continue
		}
		for {
			if _, _, ok := it.Next(); !ok {
				break
			}
		}
		if !it.Err() {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestInts(t *testing.T) {
	for in, want := range map[string]int64{"0": 0, "-7": -7, "1763769600123456789": 1763769600123456789, "1.5e3": 1500} {
		if v, ok := Int([]byte(in)); !ok || v != want {
			t.Errorf("Int(%s) = %d %v", in, v, ok)
		}
		if v, n, ok := IntPrefix([]byte(in + `,"x":1}`)); !ok || v != want || n != len(in) {
			t.Errorf("IntPrefix(%s) = %d %d %v", in, v, n, ok)
		}
	}
	for _, in := range []string{"", "-", "x", `"1"`} {
		if _, _, ok := IntPrefix([]byte(in)); ok {
			t.Errorf("IntPrefix(%q) accepted", in)
		}
	}
}

func TestArrayLen(t *testing.T) {
	for in, want := range map[string]int{`[]`: 0, `[ ]`: 0, `["a"]`: 1, `["a,b",[1,2],{"x":"]"}]`: 3, `[1,`: -1, `{}`: -1} {
		if got := ArrayLen([]byte(in)); got != want {
			t.Errorf("ArrayLen(%s) = %d, want %d", in, got, want)
		}
	}
}

// FuzzObject checks the scanner against encoding/json on valid objects:
// same keys, and each raw value decodes to what json decoded.
func FuzzObject(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"type":"message","from":"x","data":{"t":1,"p":"x\\\"y"}}`, `{"a":[{"b":"}"}],"c":"\u00e9"}`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var m map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &m) != nil {
			return
		}
		it, ok := Object([]byte(s))
		if !ok {
			t.Fatalf("Object(%q) refused a valid object", s)
		}
		got := map[string][]byte{} // the last value of a key wins, as in encoding/json
		for {
			k, v, ok := it.Next()
			if !ok {
				break
			}
			var a any
			if json.Unmarshal(v, &a) != nil {
				t.Fatalf("%q: value %q of %q is not JSON", s, v, k)
			}
			got[string(k)] = v
		}
		for k, v := range got {
			raw, found := m[k]
			if strings.Contains(k, `\`) || !utf8.ValidString(k) {
				continue // keys are compared raw, json decodes escapes
			}
			var a, b any
			_ = json.Unmarshal(v, &a)
			_ = json.Unmarshal(raw, &b)
			if !found || string(mustJSON(a)) != string(mustJSON(b)) {
				t.Fatalf("%q: key %q: %s != %s", s, k, v, raw)
			}
		}
		if it.Err() {
			t.Fatalf("%q: error on a valid object", s)
		}
	})
}

func mustJSON(v any) []byte { b, _ := json.Marshal(v); return b }
