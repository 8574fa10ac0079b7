package httpapi_test

import (
	"testing"
	"unicode/utf8"

	"partyline/httpapi"
)

// FuzzCursor: any cursor decodes or is refused without panicking, a
// decoded one is a valid non-empty string, and a code's cursor gives it back.
func FuzzCursor(f *testing.F) {
	for _, s := range []string{"", "SzdRWA", "%%", "AAAA", "____", httpapi.EncodeCursor("K7QX")} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, c string) {
		code, ok := httpapi.DecodeCursor(c)
		if ok && c != "" && (code == "" || !utf8.ValidString(code)) {
			t.Fatalf("cursor %q decoded to %q", c, code)
		}
		if utf8.ValidString(c) && c != "" && len(c) <= 128 {
			if back, ok := httpapi.DecodeCursor(httpapi.EncodeCursor(c)); !ok || back != c {
				t.Fatalf("round trip of %q: %q %v", c, back, ok)
			}
		}
	})
}
