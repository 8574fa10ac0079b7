package party

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"partyline/dialect"
)

func TestParseHookResponse(t *testing.T) {
	cases := []struct {
		name        string
		status      int
		body        string
		meta        string // "" none
		refused     string
		unavailable bool
	}{
		{"204", 204, "", "", "", false},
		{"200 whitespace", 200, " \n", "", "", false},
		{"200 empty object", 200, "{}", "", "", false},
		{"200 other fields", 200, `{"ok":true}`, "", "", false},
		{"200 null metadata", 200, `{"metadata":null}`, "", "", false},
		{"200 metadata compacted", 200, `{"metadata": {"a": [1, 2]} }`, `{"a":[1,2]}`, "", false},
		{"200 string metadata", 200, `{"metadata":"gold"}`, `"gold"`, "", false},
		{"201 metadata", 201, `{"metadata":3}`, `3`, "", false},
		{"metadata at the limit", 200, `{"metadata":"` + strings.Repeat("x", dialect.MaxMetadata-2) + `"}`, `"` + strings.Repeat("x", dialect.MaxMetadata-2) + `"`, "", false},
		{"metadata over the limit", 200, `{"metadata":"` + strings.Repeat("x", dialect.MaxMetadata-1) + `"}`, "", "", true},
		{"200 not JSON", 200, `ok`, "", "", true},
		{"200 array", 200, `[1]`, "", "", true},
		{"200 truncated", 200, `{"metadata":{`, "", "", true},
		{"403 error", 403, `{"error":"banned"}`, "", "banned", false},
		{"400 error trimmed", 400, `{"error":"  spaces  "}`, "", "spaces", false},
		{"401 no body", 401, ``, "", "join refused", false},
		{"404 not JSON", 404, `<html>`, "", "join refused", false},
		{"409 error not a string", 409, `{"error":1}`, "", "join refused", false},
		{"long error cut", 403, `{"error":"` + strings.Repeat("é", 200) + `"}`, "", strings.Repeat("é", 128), false},
		{"500", 500, `{"error":"x"}`, "", "", true},
		{"302", 302, ``, "", "", true},
		{"100", 100, ``, "", "", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := parseHookResponse(tc.status, []byte(tc.body))
			if string(v.meta) != tc.meta || v.refused != tc.refused || (v.unavailable != "") != tc.unavailable {
				t.Fatalf("got meta %q refused %q unavailable %q", v.meta, v.refused, v.unavailable)
			}
		})
	}
}

func FuzzParseHookResponse(f *testing.F) {
	for _, s := range []string{"", "{}", `{"metadata":{"a":1}}`, `{"error":"no"}`, `{"metadata":`, `[]`, `{"error":"\xff"}`} {
		for _, st := range []int{200, 204, 403, 500} {
			f.Add(st, []byte(s))
		}
	}
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		v := parseHookResponse(status, body)
		n := 0
		if v.refused != "" {
			n++
			if status < 400 || status > 499 || len(v.refused) > hookErrorMax || !utf8.ValidString(v.refused) {
				t.Fatalf("status %d refused %q", status, v.refused)
			}
		}
		if v.unavailable != "" {
			n++
			if status >= 400 && status < 500 {
				t.Fatalf("status %d unavailable: %s", status, v.unavailable)
			}
		}
		if v.meta != nil {
			n++
			var b bytes.Buffer
			if len(v.meta) > dialect.MaxMetadata || !json.Valid(v.meta) || json.Compact(&b, v.meta) != nil || b.String() != string(v.meta) {
				t.Fatalf("metadata %q", v.meta)
			}
		}
		if n > 1 || (n == 0 && (status < 200 || status > 299)) {
			t.Fatalf("status %d: verdict %+v", status, v)
		}
	})
}
