package presence

import (
	"encoding/json"
	"testing"
)

// FuzzDecode: decode and decodeNames never panic; accepted names are
// valid, distinct and 1..1000 of them; accepted payloads are JSON objects.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"AUTH","token":"a.b.c"}`,
		`{"type":"SUBSCRIBE_PRESENCE","usernames":["alice","bob","alice"]}`,
		`{"type":"SUBSCRIBE_PRESENCE","usernames":[]}`,
		`{"type":"SUBSCRIBE_PRESENCE","usernames":"alice"}`,
		`{"type":"SUBSCRIBE_PRESENCE","usernames":["\u0001"]}`,
		`{"type":"SUBSCRIBE_PRESENCE","usernames":[1,null]}`,
		`{"type":"DISCONNECT"}`, `[]`, `{`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var r request
		typ, bad := decode(payload, &r)
		if bad != "" {
			if typ != "" {
				t.Fatalf("type %q with error %q", typ, bad)
			}
			return
		}
		if typ == "" || !json.Valid(payload) {
			t.Fatalf("accepted %q as type %q", payload, typ)
		}
		names, bad := decodeNames(r.Usernames)
		if bad != "" {
			if names != nil {
				t.Fatal("names with an error")
			}
			return
		}
		if len(names) == 0 || len(names) > maxNames {
			t.Fatalf("%d names", len(names))
		}
		seen := map[string]bool{}
		for _, n := range names {
			if !ValidName(n) || seen[n] {
				t.Fatalf("bad or repeated name %q in %q", n, names)
			}
			seen[n] = true
		}
	})
}
