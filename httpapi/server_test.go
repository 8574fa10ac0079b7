package httpapi_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"partyline/internal/testutil"
	"partyline/server"
)

// noKeepAlive leaves no idle connection behind on the server, so the HTTP
// connection-cap tests count only their own.
var noKeepAlive = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

func get(t *testing.T, url, auth string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := noKeepAlive.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// sample finds the value of metric name whose label set contains every
// label in want, in Prometheus text exposition.
func sample(body, name string, want ...string) (float64, bool) {
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, "#") {
			continue
		}
		metric, val, ok := strings.Cut(l, " ")
		if !ok {
			continue
		}
		n, labels, _ := strings.Cut(metric, "{")
		if n != name {
			continue
		}
		match := true
		for _, w := range want {
			match = match && strings.Contains(labels, w)
		}
		if !match {
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		return v, err == nil
	}
	return 0, false
}

func waitFor(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last: %s", what, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestServerHealthz(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.APIKey = "k" }) // no key needed
	code, body, h := get(t, testutil.HTTPURL(s, "/healthz"), "")
	if code != 200 || strings.TrimSpace(body) != `{"status":"ok"}` || h.Get("Content-Type") != "application/json" {
		t.Fatalf("/healthz: %d %q %v", code, body, h)
	}
}

// TestServerMetrics drives known party traffic and checks the counters.
func TestServerMetrics(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.APIKey = "k" }) // /metrics needs no key
	url := testutil.URL(s, 0, "/party")
	metrics := func() string {
		code, body, h := get(t, testutil.HTTPURL(s, "/metrics"), "")
		if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
			t.Fatalf("/metrics: %d %s", code, h.Get("Content-Type"))
		}
		return body
	}
	body := metrics()
	for _, name := range []string{"partyline_messages_in_total", "partyline_messages_out_total", "partyline_connections"} {
		if v, ok := sample(body, name); !ok || v != 0 {
			t.Fatalf("fresh server: %s = %v (present %v), want 0", name, v, ok)
		}
	}
	if v, ok := sample(body, "partyline_rooms", `dialect="party"`); !ok || v != 0 {
		t.Fatalf(`fresh server: partyline_rooms{dialect="party"} = %v (present %v), want 0`, v, ok)
	}

	// Two rooms. In: 2 create + 1 join + 1 send + 1 set_state + 1 bad = 6.
	// Out: 2 created + joined + peer_joined + message + 2 state + error = 8.
	a := testutil.Dial(t, url)
	a.Send(`{"type":"create","clientId":"a"}`)
	code := a.Expect("created").Str("room")
	b := testutil.Dial(t, url)
	b.Send(`{"type":"join","clientId":"b","room":"` + code + `"}`)
	b.Expect("joined")
	a.Expect("peer_joined")
	a.Send(`{"type":"send","data":1}`)
	b.Expect("message")
	b.Send(`{"type":"set_state","state":2}`)
	a.Expect("state")
	b.Expect("state")
	c := testutil.Dial(t, url)
	c.Send(`{"type":"create","clientId":"c"}`)
	c.Expect("created")
	c.Send(`nope`)
	c.Expect("error")

	want := map[string]float64{
		"partyline_messages_in_total":  6,
		"partyline_messages_out_total": 8,
		"partyline_connections":        3,
	}
	waitFor(t, "the counters", func() (bool, string) {
		body := metrics()
		var state []string
		ok := true
		for name, w := range want {
			v, present := sample(body, name)
			ok = ok && present && v == w
			state = append(state, fmt.Sprintf("%s=%v", name, v))
		}
		v, present := sample(body, "partyline_rooms", `dialect="party"`)
		ok = ok && present && v == 2
		state = append(state, fmt.Sprintf("rooms=%v", v))
		return ok, strings.Join(state, " ")
	})

	// Closing c deletes its room and drops a connection.
	c.Conn.Close()
	waitFor(t, "c's disconnect", func() (bool, string) {
		body := metrics()
		conns, _ := sample(body, "partyline_connections")
		rooms, _ := sample(body, "partyline_rooms", `dialect="party"`)
		return conns == 2 && rooms == 1, fmt.Sprintf("connections=%v rooms=%v", conns, rooms)
	})
	if v, ok := sample(metrics(), "partyline_bytes_in_total"); !ok || v <= 0 {
		t.Fatalf("partyline_bytes_in_total = %v", v)
	}
}

func TestServerGetRoom(t *testing.T) {
	s := testutil.Start(t, nil)
	url := testutil.URL(s, 0, "/party")
	before := time.Now().Truncate(time.Second)
	a := testutil.Dial(t, url)
	a.Send(`{"type":"create","clientId":"a","maxClients":7}`)
	code := a.Expect("created").Str("room")
	b := testutil.Dial(t, url)
	b.Send(`{"type":"join","clientId":"b","room":"` + code + `"}`)
	b.Expect("joined")

	for _, path := range []string{code, strings.ToLower(code)} {
		status, body, h := get(t, testutil.HTTPURL(s, "/api/rooms/"+path), "")
		if status != 200 || h.Get("Content-Type") != "application/json" {
			t.Fatalf("GET /api/rooms/%s: %d %q", path, status, body)
		}
		var got map[string]any
		if err := json.Unmarshal([]byte(body), &got); err != nil {
			t.Fatalf("body %q: %v", body, err)
		}
		// The rooms API added fields (docs/api.md); these four keep their meaning.
		if got["room"] != code || got["members"] != 2.0 || got["maxClients"] != 7.0 || got["code"] != code {
			t.Fatalf("room %v, want room %s, members 2, maxClients 7, created", got, code)
		}
		created, _ := got["created"].(string)
		ts, err := time.Parse(time.RFC3339, created)
		if err != nil || !strings.HasSuffix(created, "Z") {
			t.Fatalf("created %q is not ISO-8601 UTC: %v", created, err)
		}
		if ts.Before(before) || ts.After(time.Now()) {
			t.Fatalf("created %v not between %v and now", ts, before)
		}
	}
	status, body, _ := get(t, testutil.HTTPURL(s, "/api/rooms/ZZZZ9"), "")
	var e struct{ Error string }
	if status != 404 || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, "not found") {
		t.Fatalf("unknown room: %d %q, want 404 with an error", status, body)
	}
	if status, _, _ := get(t, testutil.HTTPURL(s, "/api/rooms/"), ""); status != 404 {
		t.Fatalf("GET /api/rooms/: %d, want 404", status)
	}
}

func TestServerAPIKey(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.APIKey = "s3cret" })
	a := testutil.Dial(t, testutil.URL(s, 0, "/party"))
	a.Send(`{"type":"create","clientId":"a"}`)
	code := a.Expect("created").Str("room")
	room := testutil.HTTPURL(s, "/api/rooms/"+code)
	cases := []struct {
		auth string
		want int
	}{
		{"", 401},
		{"Bearer wrong", 403},
		{"Bearer s3cret", 200},
	}
	for _, tc := range cases {
		status, body, h := get(t, room, tc.auth)
		if status != tc.want {
			t.Fatalf("Authorization %q: %d %q, want %d", tc.auth, status, body, tc.want)
		}
		if tc.want == 401 && h.Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
		if tc.want == 200 && !strings.Contains(body, `"room":"`+code+`"`) {
			t.Fatalf("body %q", body)
		}
	}
	// The key is checked before the room: an unknown room is 401, not 404.
	if status, _, _ := get(t, testutil.HTTPURL(s, "/api/rooms/NOPE"), ""); status != 401 {
		t.Fatalf("unknown room without a key: %d, want 401", status)
	}
	// Without a key configured, the (loopback) test client is served.
	s2 := testutil.Start(t, nil)
	if status, _, _ := get(t, testutil.HTTPURL(s2, "/api/rooms/NOPE"), ""); status != 404 {
		t.Fatalf("loopback client without a key configured: %d, want 404 (served)", status)
	}
}
