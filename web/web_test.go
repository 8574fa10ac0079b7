package web

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func testHandler(ls []Listener, names ...string) http.Handler {
	return Handler(Options{Listeners: func() []Listener { return ls }, Dialects: names})
}

func get(h http.Handler, method, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func TestRoutes(t *testing.T) {
	h := testHandler([]Listener{{Addr: &net.TCPAddr{IP: net.IPv4zero, Port: 8080}}}, "party", "teams", "chat", "presence")
	for _, tc := range []struct {
		path   string
		status int
		ctype  string
		body   string
	}{
		{"/", 200, "text/html; charset=utf-8", `href="/teams/1"`},
		{"/teams/1", 200, "text/html; charset=utf-8", `/assets/teams.js`},
		{"/teams/2", 200, "text/html; charset=utf-8", `/assets/teams.js`},
		{"/teams/3", 404, "", ""}, // --teams defaults to 2
		{"/teams/0", 404, "", ""},
		{"/teams/01", 404, "", ""},
		{"/teams/x", 404, "", ""},
		{"/teams/", 404, "", ""},
		{"/party", 200, "text/html; charset=utf-8", `/assets/party.js`},
		{"/chat", 200, "text/html; charset=utf-8", `/assets/chat.js`},
		{"/admin", 200, "text/html; charset=utf-8", `/assets/admin.js`},
		{"/assets/admin.js", 200, "text/javascript; charset=utf-8", "/api/stats"},
		{"/admin/", 404, "", ""},
		{"/assets/style.css", 200, "text/css; charset=utf-8", "--accent"},
		{"/assets/teams.js", 200, "text/javascript; charset=utf-8", "TeamsClient"},
		{"/assets/icon.svg", 200, "image/svg+xml", "<svg"},
		{"/sdk/index.js", 200, "text/javascript; charset=utf-8", `from "./connection.js"`},
		{"/sdk/connection.js", 200, "text/javascript; charset=utf-8", "class Connection"},
		{"/sdk/index.d.ts", 200, "text/plain; charset=utf-8", "export"},
		{"/sdk/../web.go", 404, "", ""},
		{"/assets/../web.go", 404, "", ""},
		{"/assets/", 404, "", ""},
		{"/nope", 404, "", ""},
		{"/api/unknown", 404, "", ""},
	} {
		w := get(h, "GET", tc.path)
		if w.Code != tc.status {
			t.Errorf("GET %s: status %d, want %d", tc.path, w.Code, tc.status)
			continue
		}
		if tc.status != 200 {
			continue
		}
		if ct := w.Header().Get("Content-Type"); ct != tc.ctype {
			t.Errorf("GET %s: Content-Type %q, want %q", tc.path, ct, tc.ctype)
		}
		if !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.body)
		}
		if w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no nosniff", tc.path)
		}
	}
}

func TestTeamCount(t *testing.T) {
	h := Handler(Options{Dialects: []string{"teams"}, Teams: 5})
	for path, want := range map[string]int{"/teams/5": 200, "/teams/6": 404, "/teams/05": 404} {
		if w := get(h, "GET", path); w.Code != want {
			t.Errorf("GET %s: %d, want %d", path, w.Code, want)
		}
	}
}

func TestPagesNeedTheirDialect(t *testing.T) {
	h := testHandler(nil, "party") // no teams, no chat
	for path, want := range map[string]int{"/party": 200, "/teams/1": 404, "/chat": 404, "/": 200} {
		if w := get(h, "GET", path); w.Code != want {
			t.Errorf("GET %s: %d, want %d", path, w.Code, want)
		}
	}
}

func TestPagesSendCSP(t *testing.T) {
	h := testHandler(nil, "party")
	csp := get(h, "GET", "/party").Header().Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "connect-src 'self' ws: wss:", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
}

// TestAdminPage: /admin is a page like the others (its data comes from the
// API, behind the key), served whatever the dialects, with the page headers.
func TestAdminPage(t *testing.T) {
	for _, names := range [][]string{{"party"}, {"chat"}, nil} {
		w := get(testHandler(nil, names...), "GET", "/admin")
		h := w.Header()
		if w.Code != 200 || h.Get("Content-Type") != "text/html; charset=utf-8" {
			t.Fatalf("dialects %v: GET /admin %d %q", names, w.Code, h.Get("Content-Type"))
		}
		for name, want := range map[string]string{
			"Content-Security-Policy": csp,
			"Referrer-Policy":         "no-referrer",
			"X-Content-Type-Options":  "nosniff",
			"Cache-Control":           "no-cache",
		} {
			if got := h.Get(name); got != want {
				t.Errorf("dialects %v: %s %q, want %q", names, name, got, want)
			}
		}
		body := w.Body.String()
		for _, want := range []string{`<script type="module" src="/assets/admin.js">`, `<label for="key">`, `<label for="prefix">`} {
			if !strings.Contains(body, want) {
				t.Errorf("/admin lacks %q", want)
			}
		}
		if strings.Contains(body, "<script>") || strings.Contains(body, "style=") {
			t.Error("/admin has inline script or style, which the CSP refuses")
		}
	}
	if w := get(testHandler(nil, "party"), "POST", "/admin"); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /admin: %d", w.Code)
	}
}

func TestMethods(t *testing.T) {
	h := testHandler(nil, "party")
	if w := get(h, "POST", "/party"); w.Code != http.StatusMethodNotAllowed || w.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /party: %d Allow=%q", w.Code, w.Header().Get("Allow"))
	}
	w := get(h, "HEAD", "/party")
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD /party: %d, %d body bytes, Content-Length %q", w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}
}

func TestConfig(t *testing.T) {
	if w := get(testHandler(nil, "party"), "GET", "/config.json"); w.Code != http.StatusServiceUnavailable {
		t.Fatalf("before the listeners are bound: %d, want 503", w.Code)
	}
	ls := []Listener{
		{Addr: &net.TCPAddr{IP: net.IPv6unspecified, Port: 8080}},
		{Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 4000}, Dialect: "chat"},
	}
	w := get(Handler(Options{Listeners: func() []Listener { return ls }, Dialects: []string{"party", "chat"}, PartyMaxClients: 12}), "GET", "/config.json")
	if w.Code != 200 || w.Header().Get("Content-Type") != "application/json" || w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("config: %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Header().Get("Cache-Control"))
	}
	var doc configDoc
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	want := configDoc{
		Listeners:       []listenerDoc{{Port: 8080, Host: "", Dialect: ""}, {Port: 4000, Host: "127.0.0.1", Dialect: "chat"}},
		Dialects:        []string{"party", "chat"},
		Teams:           2,
		PartyMaxClients: 12,
	}
	got, _ := json.Marshal(doc)
	exp, _ := json.Marshal(want)
	if string(got) != string(exp) {
		t.Errorf("config.json = %s, want %s", got, exp)
	}
}
