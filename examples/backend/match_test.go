package main

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"partyline/internal/testutil"
	"partyline/server"
)

// TestMatchmaker runs the backend against a real partyline (its HTTP and
// WebSocket listeners on loopback ports) with an API key: the room it
// creates is joined by real WebSocket clients.
func TestMatchmaker(t *testing.T) {
	pl := testutil.Start(t, func(c *server.Config) { c.APIKey = "pl-key"; c.Party.MaxClients = 8 })
	newBackend := func(key string) *httptest.Server {
		mm := &Matchmaker{API: testutil.HTTPURL(pl, ""), Key: key, WS: testutil.URL(pl, 0, "")}
		b := httptest.NewServer(routes(secret, 10, mm, slog.New(slog.NewTextHandler(io.Discard, nil))))
		t.Cleanup(b.Close)
		return b
	}
	backend := newBackend("pl-key")
	match := func(b *httptest.Server, body string) (int, map[string]any) {
		t.Helper()
		resp, err := b.Client().Post(b.URL+"/match", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
			t.Fatalf("POST /match %s: %d, not JSON: %v", body, resp.StatusCode, err)
		}
		return resp.StatusCode, m
	}

	st, m := match(backend, `{"players":2}`)
	if st != http.StatusCreated || m["maxClients"] != 2.0 {
		t.Fatalf("POST /match: %d %v", st, m)
	}
	code, _ := m["code"].(string)
	url, _ := m["url"].(string)
	if url != testutil.URL(pl, 0, "/party") || code == "" {
		t.Fatalf("match %v: want a code and url %s", m, testutil.URL(pl, 0, "/party"))
	}
	// Two players join the room by its code; a third finds it full.
	a := testutil.Dial(t, url)
	a.Send(`{"type":"join","clientId":"alice","room":"` + code + `"}`)
	if j := a.Expect("joined"); j.Str("room") != code {
		t.Fatalf("joined %v", j)
	}
	b := testutil.Dial(t, url)
	b.Send(`{"type":"join","clientId":"bob","room":"` + strings.ToLower(code) + `"}`)
	b.Expect("joined")
	if p := a.Expect("peer_joined"); p.Str("clientId") != "bob" {
		t.Fatalf("peer_joined %v", p)
	}
	c := testutil.Dial(t, url)
	c.Send(`{"type":"join","clientId":"carol","room":"` + code + `"}`)
	c.Expect("error")

	for _, tc := range []struct {
		name    string
		backend *httptest.Server
		body    string
		status  int
		msg     string
	}{
		{"no players", backend, `{"players":0}`, 422, "players must be"},
		{"over the backend's bound", backend, `{"players":1001}`, 422, "players must be"},
		{"over partyline's --party-max-clients", backend, `{"players":9}`, 422, "partyline answered 422"},
		{"not JSON", backend, `players=2`, 400, "body must be"},
		{"body at the limit", backend, `{"players":2` + strings.Repeat(" ", MaxMatchBody-len(`{"players":2}`)) + `}`, 201, ""},
		{"body over the limit", backend, `{"players":2` + strings.Repeat(" ", MaxMatchBody) + `}`, 413, "body over"},
		{"backend without the key", newBackend(""), `{"players":2}`, 502, "partyline answered 401"},
		{"backend with a wrong key", newBackend("nope"), `{"players":2}`, 502, "partyline answered 403"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m := match(tc.backend, tc.body)
			if msg, _ := m["error"].(string); st != tc.status || !strings.Contains(msg, tc.msg) {
				t.Fatalf("%d %v, want %d with %q", st, m, tc.status, tc.msg)
			}
		})
	}
	down := &Matchmaker{API: "http://127.0.0.1:1", WS: "ws://127.0.0.1:1"}
	rec := httptest.NewRecorder()
	down.ServeHTTP(rec, httptest.NewRequest("POST", "/match", strings.NewReader(`{"players":2}`)))
	if rec.Code != http.StatusBadGateway {
		t.Fatalf("partyline unreachable: %d %s", rec.Code, rec.Body)
	}
}
