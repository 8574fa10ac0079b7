package httpapi_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"partyline/dialect"
	"partyline/httpapi"
)

// fakeDialect mounts GET /api/fake through the API-key wrapper.
type fakeDialect struct{}

func (fakeDialect) Name() string                      { return "fake" }
func (fakeDialect) Accept(*dialect.Request) error     { return nil }
func (fakeDialect) Open(dialect.Conn) dialect.Session { return nil }
func (fakeDialect) Routes(mux dialect.Mux, api func(http.Handler) http.Handler) {
	mux.Handle("GET /api/fake", api(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, `{"fake":true}`)
	})))
}

// plainDialect has no HTTP routes.
type plainDialect struct{}

func (plainDialect) Name() string                      { return "plain" }
func (plainDialect) Accept(*dialect.Request) error     { return nil }
func (plainDialect) Open(dialect.Conn) dialect.Session { return nil }

func serve(h http.Handler, method, target, remote, auth string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	req.Host = "localhost:8081" // httptest's example.com is not a loopback name: keyless /api refuses it
	if remote != "" {
		req.RemoteAddr = remote
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestHealthz(t *testing.T) {
	h := httpapi.New(httpapi.Config{APIKey: "k"})
	for _, remote := range []string{"127.0.0.1:1", "203.0.113.9:4000"} {
		rec := serve(h, "GET", "/healthz", remote, "")
		if rec.Code != 200 || strings.TrimSpace(rec.Body.String()) != `{"status":"ok"}` {
			t.Fatalf("GET /healthz from %s: %d %q", remote, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
			t.Fatalf("Content-Type %q", ct)
		}
	}
	if rec := serve(h, "POST", "/healthz", "", ""); rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("POST /healthz: %d, want 405", rec.Code)
	}
	if rec := serve(h, "GET", "/nothing", "", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("GET /nothing: %d, want 404", rec.Code)
	}
}

func TestMetricsHandler(t *testing.T) {
	if rec := serve(httpapi.New(httpapi.Config{}), "GET", "/metrics", "", ""); rec.Code != http.StatusNotFound {
		t.Fatalf("/metrics without a gatherer: %d, want 404", rec.Code)
	}
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "partyline_test_total", Help: "x"})
	reg.MustRegister(c)
	c.Add(3)
	// /metrics needs no key, even from a remote client.
	rec := serve(httpapi.New(httpapi.Config{APIKey: "k", Metrics: reg}), "GET", "/metrics", "203.0.113.9:4000", "")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "\npartyline_test_total 3\n") {
		t.Fatalf("/metrics: %d\n%s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("/metrics Content-Type %q, want the Prometheus text format", ct)
	}
}

func TestRequireKey(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "served") })
	cases := []struct {
		name   string
		key    string
		remote string
		auth   string
		want   int
	}{
		{"no key: IPv4 loopback", "", "127.0.0.1:5555", "", 200},
		{"no key: other 127/8 address", "", "127.1.2.3:5555", "", 200},
		{"no key: IPv6 loopback", "", "[::1]:5555", "", 200},
		{"no key: remote IPv4", "", "203.0.113.5:5555", "", 403},
		{"no key: private IPv4 is not loopback", "", "10.0.0.1:5555", "", 403},
		{"no key: remote IPv6", "", "[2001:db8::1]:5555", "", 403},
		{"no key: IPv4-mapped remote", "", "[::ffff:203.0.113.5]:5555", "", 403},
		{"no key: unparsable address", "", "somewhere", "", 403},
		{"no key: a bearer does not help a remote client", "", "203.0.113.5:5555", "Bearer anything", 403},
		{"key: missing header", "s3cret", "127.0.0.1:5555", "", 401},
		{"key: missing header from remote", "s3cret", "203.0.113.5:5555", "", 401},
		{"key: empty bearer", "s3cret", "127.0.0.1:5555", "Bearer ", 401},
		{"key: other scheme", "s3cret", "127.0.0.1:5555", "Basic czNjcmV0", 401},
		{"key: bare key without scheme", "s3cret", "127.0.0.1:5555", "s3cret", 401},
		{"key: wrong key", "s3cret", "127.0.0.1:5555", "Bearer wrong", 403},
		{"key: prefix of the key", "s3cret", "127.0.0.1:5555", "Bearer s3cre", 403},
		{"key: key with a suffix", "s3cret", "127.0.0.1:5555", "Bearer s3crets", 403},
		{"key: right key", "s3cret", "127.0.0.1:5555", "Bearer s3cret", 200},
		{"key: right key from remote", "s3cret", "203.0.113.5:5555", "Bearer s3cret", 200},
		{"key: scheme is case-insensitive (RFC 7235)", "s3cret", "203.0.113.5:5555", "bearer s3cret", 200},
		{"key: upper-case scheme", "s3cret", "203.0.113.5:5555", "BEARER s3cret", 200},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			rec := serve(httpapi.RequireKey(tc.key, ok), "GET", "/api/x", tc.remote, tc.auth)
			if rec.Code != tc.want {
				t.Fatalf("status %d (%s), want %d", rec.Code, rec.Body, tc.want)
			}
			if tc.want == 200 {
				if rec.Body.String() != "served" {
					t.Fatalf("body %q", rec.Body)
				}
				return
			}
			var body struct{ Error string }
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error == "" {
				t.Fatalf("refusal body %q: want {\"error\":TEXT}", rec.Body)
			}
			if rec.Body.String() == "served" {
				t.Fatal("the handler ran")
			}
			if tc.want == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("401 without a Bearer challenge: %q", rec.Header().Get("WWW-Authenticate"))
			}
		})
	}
}

func TestDialectRoutesAreBehindTheKey(t *testing.T) {
	h := httpapi.New(httpapi.Config{APIKey: "k", Dialects: []dialect.Dialect{plainDialect{}, fakeDialect{}}})
	if rec := serve(h, "GET", "/api/fake", "127.0.0.1:1", ""); rec.Code != 401 {
		t.Fatalf("dialect route without a key: %d, want 401", rec.Code)
	}
	if rec := serve(h, "GET", "/api/fake", "127.0.0.1:1", "Bearer k"); rec.Code != 200 || rec.Body.String() != `{"fake":true}` {
		t.Fatalf("dialect route with the key: %d %q", rec.Code, rec.Body)
	}
	h = httpapi.New(httpapi.Config{Dialects: []dialect.Dialect{fakeDialect{}}})
	if rec := serve(h, "GET", "/api/fake", "198.51.100.1:1", ""); rec.Code != 403 {
		t.Fatalf("dialect route from a remote client without a key configured: %d, want 403", rec.Code)
	}
}

func TestHTTPError(t *testing.T) {
	rec := httptest.NewRecorder()
	dialect.HTTPError(rec, http.StatusTeapot, "quote \" and\nnewline")
	var body map[string]string
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %q: %v", rec.Body, err)
	}
	if rec.Code != http.StatusTeapot || body["error"] != "quote \" and\nnewline" || len(body) != 1 {
		t.Fatalf("Error wrote %d %q", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q", ct)
	}
}
