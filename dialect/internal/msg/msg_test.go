package msg

import (
	"testing"

	"github.com/bytedance/sonic"
)

func TestDecode(t *testing.T) {
	type req struct {
		Type sonic.NoCopyRawMessage `json:"type"`
	}
	for _, tc := range []struct {
		in   string
		want Result
		typ  string
	}{
		{`{"type":"x"}`, OK, `"x"`},
		{" \n{\"type\":1}\t", OK, `1`},
		{`{}`, OK, ``},
		{`null`, NotObject, ``},
		{` null `, NotObject, ``},
		{`[{"type":"x"}]`, NotObject, ``},
		{`"x"`, NotObject, ``},
		{`5`, NotObject, ``},
		{`true`, NotObject, ``},
		{``, Invalid, ``},
		{`   `, Invalid, ``},
		{`{"type":`, Invalid, ``},
		{`{"type":"x"} {}`, Invalid, ``},
		{"{\"type\":\"a\x01b\"}", Invalid, ``},
		{`{'type':1}`, Invalid, ``},
		{`nul`, Invalid, ``},
	} {
		var r req
		got := Decode([]byte(tc.in), &r)
		if got != tc.want || (got == OK && string(r.Type) != tc.typ) {
			t.Errorf("Decode(%q) = %d (type %q), want %d (type %q)", tc.in, got, r.Type, tc.want, tc.typ)
		}
	}
}
