package httpapi_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"partyline/internal/testutil"
	"partyline/server"
)

// TestServerStats: /api/stats is behind the key and reports what
// /metrics reports, live.
func TestServerStats(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.APIKey = "k" })
	url := testutil.HTTPURL(s, "/api/stats")
	for auth, want := range map[string]int{"": 401, "Bearer nope": 403} {
		if code, body, _ := get(t, url, auth); code != want {
			t.Fatalf("Authorization %q: %d %s, want %d", auth, code, body, want)
		}
	}
	stats := func() (map[string]any, string) {
		code, body, h := get(t, url, "Bearer k")
		if code != 200 || h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("GET /api/stats: %d %q %v", code, body, h)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(body), &m); err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		return m, body
	}
	m, body := stats()
	rooms, _ := m["rooms"].(map[string]any)
	if m["connections"] != 0.0 || m["messagesIn"] != 0.0 || rooms["party"] != 0.0 || m["node"] == "" || m["time"] == nil {
		t.Fatalf("fresh server: %s", body)
	}

	ws := testutil.URL(s, 0, "/party")
	a := testutil.Dial(t, ws)
	a.Send(`{"type":"create","clientId":"a"}`)
	code := a.Expect("created").Str("room")
	b := testutil.Dial(t, ws)
	b.Send(`{"type":"join","clientId":"b","room":"` + code + `"}`)
	b.Expect("joined")
	a.Expect("peer_joined")
	a.Send(`{"type":"send","data":1}`)
	b.Expect("message")
	c := testutil.Dial(t, ws)
	c.Send(`{"type":"create","clientId":"c"}`)
	c.Expect("created")
	// In: 2 creates, a join, a send. Out: 2 created, joined, peer_joined, message.
	waitFor(t, "the counts", func() (bool, string) {
		m, body := stats()
		rooms, _ := m["rooms"].(map[string]any)
		return m["connections"] == 3.0 && rooms["party"] == 2.0 && m["messagesIn"] == 4.0 && m["messagesOut"] == 5.0, body
	})
	c.Conn.Close()
	waitFor(t, "c's room gone", func() (bool, string) {
		m, body := stats()
		rooms, _ := m["rooms"].(map[string]any)
		return m["connections"] == 2.0 && rooms["party"] == 1.0, fmt.Sprint(body)
	})
}

// TestAdminPageIsNotBehindTheKey: /admin is a web page (its data comes
// from the guarded API), served without the key with the pages' headers.
func TestAdminPageIsNotBehindTheKey(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.APIKey = "k" })
	code, body, h := get(t, testutil.HTTPURL(s, "/admin"), "")
	if code != 200 || h.Get("Content-Type") != "text/html; charset=utf-8" || !strings.Contains(body, "/assets/admin.js") {
		t.Fatalf("GET /admin: %d %q", code, h.Get("Content-Type"))
	}
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self'") || !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("CSP %q", csp)
	}
	if h.Get("X-Content-Type-Options") != "nosniff" || h.Get("Referrer-Policy") != "no-referrer" {
		t.Fatalf("headers %v", h)
	}
}
