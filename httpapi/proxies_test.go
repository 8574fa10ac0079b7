package httpapi_test

import (
	"net/http/httptest"
	"testing"

	"partyline/dialect"
	"partyline/httpapi"
	"partyline/internal/security"
)

// TestLoopbackBehindProxy: the keyless API's loopback rule judges the
// client the way the WebSocket side does. X-Forwarded-For and X-Real-IP
// never make a remote peer loopback; from a trusted proxy on loopback
// (a reverse proxy on the same machine), a forwarded remote client is
// not loopback, and a request with no forwarded client is.
func TestLoopbackBehindProxy(t *testing.T) {
	local, err := security.ParseProxies("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		proxies *security.Proxies
		remote  string
		header  [2]string
		want    int
	}{
		{"no proxies: remote peer claims loopback", nil, "203.0.113.5:1", [2]string{"X-Forwarded-For", "127.0.0.1"}, 403},
		{"no proxies: remote peer claims loopback by X-Real-IP", nil, "203.0.113.5:1", [2]string{"X-Real-IP", "127.0.0.1"}, 403},
		{"no proxies: loopback peer, header ignored", nil, "127.0.0.1:1", [2]string{"X-Forwarded-For", "203.0.113.5"}, 200},
		{"trusted local proxy forwards a remote client", local, "127.0.0.1:1", [2]string{"X-Forwarded-For", "203.0.113.5"}, 403},
		{"trusted local proxy forwards by X-Real-IP", local, "127.0.0.1:1", [2]string{"X-Real-IP", "203.0.113.5"}, 403},
		{"trusted local proxy, local client", local, "127.0.0.1:1", [2]string{"X-Forwarded-For", "127.0.0.1"}, 200},
		{"trusted local proxy, no header", local, "127.0.0.1:1", [2]string{}, 200},
		{"untrusted remote peer with a trusted-looking chain", local, "203.0.113.5:1", [2]string{"X-Forwarded-For", "127.0.0.1, 127.0.0.1"}, 403},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := httpapi.New(httpapi.Config{Dialects: []dialect.Dialect{fakeDialect{}}, Proxies: tc.proxies})
			req := httptest.NewRequest("GET", "/api/fake", nil)
			req.Host = "localhost:8081"
			req.RemoteAddr = tc.remote
			if tc.header[0] != "" {
				req.Header.Set(tc.header[0], tc.header[1])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.want {
				t.Fatalf("HTTP %d, want %d: %s", rec.Code, tc.want, rec.Body)
			}
		})
	}
}
