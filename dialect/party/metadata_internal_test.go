package party

import (
	"encoding/json"
	"testing"

	"partyline/dialect"
)

// FuzzParseListing: create's and set_metadata's public and metadata are
// accepted only as booleans and JSON of at most dialect.MaxMetadata bytes,
// and what is kept is a copy.
func FuzzParseListing(f *testing.F) {
	f.Add([]byte("true"), []byte(`{"map":"dust"}`))
	f.Add([]byte(""), []byte("null"))
	f.Add([]byte("1"), []byte(`"x"`))
	f.Fuzz(func(t *testing.T, public, meta []byte) {
		if len(meta) > 0 && !json.Valid(meta) {
			return // sonic hands over valid JSON only
		}
		l, e := parseListing(public, meta)
		switch p := string(public); {
		case e == errPublic:
			if p == "" || p == "null" || p == "true" || p == "false" {
				t.Fatalf("public %q refused", public)
			}
			return
		case p != "" && p != "null" && p != "true" && p != "false":
			t.Fatalf("public %q accepted", public)
		case l.public != (p == "true") || l.hasPublic != (p == "true" || p == "false"):
			t.Fatalf("public %q read as %v/%v", public, l.public, l.hasPublic)
		}
		if (e == errMetadataSize) != (len(meta) > dialect.MaxMetadata) {
			t.Fatalf("metadata of %d bytes: %q", len(meta), e)
		}
		if e == "" && len(meta) > 0 && string(meta) != "null" {
			if string(l.meta) != string(meta) || &l.meta[0] == &meta[0] {
				t.Fatalf("metadata not kept as a copy")
			}
		}
	})
}
