package party_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"partyline/assemble"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/internal/testutil"
	"partyline/server"
)

// v2env is a server with a listener bound to party-v2 (and one bound to
// party, and a path-routed one).
type v2env struct {
	t    *testing.T
	srv  *server.Server
	url  string // ws:// of the party-v2 listener
	base string // http:// of the same port
}

const (
	v2Listener = 1
	v1Listener = 2
)

func startV2(t *testing.T, mutate func(*server.Config)) *v2env {
	t.Helper()
	s := testutil.Start(t, func(c *server.Config) {
		c.Listeners = []server.Listener{{Addr: "127.0.0.1:0"}, {Addr: "127.0.0.1:0", Dialect: "party-v2"}, {Addr: "127.0.0.1:0", Dialect: "party"}}
		c.Party.InstanceID = "test-machine"
		c.Party.Region = "fra"
		if mutate != nil {
			mutate(c)
		}
	})
	return &v2env{t: t, srv: s, url: testutil.URL(s, v2Listener, "/"), base: "http://" + s.Addrs()[v2Listener].String()}
}

// with returns e for use by t (a subtest).
func (e *v2env) with(t *testing.T) *v2env {
	c := *e
	c.t = t
	return &c
}

func (e *v2env) dial() *testutil.Client { e.t.Helper(); return testutil.Dial(e.t, e.url) }

// create dials a host that creates a room with extra fields; it returns the
// host and the created reply.
func (e *v2env) create(id string, max any, extra map[string]any) (*testutil.Client, testutil.Msg) {
	e.t.Helper()
	c := e.dial()
	req := map[string]any{"type": "create", "clientId": id, "maxClients": max}
	for k, v := range extra {
		req[k] = v
	}
	c.Send(req)
	return c, c.Expect("created")
}

// pair opens a room (maxClients 8) with a host and a guest "g".
func (e *v2env) pair() (host, guest *testutil.Client, code string) {
	e.t.Helper()
	host, m := e.create("host", 8, nil)
	code = m.Str("room")
	guest, _ = e.join(code, "g")
	host.Expect("peer_joined")
	return host, guest, code
}

// join dials a client that joins code as id and returns it with "joined".
func (e *v2env) join(code, id string) (*testutil.Client, testutil.Msg) {
	e.t.Helper()
	c := e.dial()
	c.Send(map[string]any{"type": "join", "clientId": id, "room": code})
	return c, c.Expect("joined")
}

// get is a plain HTTP GET on the party-v2 port.
func (e *v2env) get(path string) (*http.Response, string) {
	e.t.Helper()
	return httpGet(e.t, e.base+path)
}

func httpGet(t *testing.T, url string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// roomClients is GET /room/<code>'s "clients", or -1 for 404.
func (e *v2env) roomClients(code string) int {
	e.t.Helper()
	resp, body := e.get("/room/" + code)
	if resp.StatusCode == 404 {
		return -1
	}
	var v struct{ Clients int }
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		e.t.Fatalf("room body %q: %v", body, err)
	}
	return v.Clients
}

func num(m testutil.Msg, k string) int {
	v, ok := m[k].(float64)
	if !ok {
		return -1
	}
	return int(v)
}

func ints(t *testing.T, v any) []int {
	t.Helper()
	raw, ok := v.([]any)
	if !ok {
		t.Fatalf("%v is not an array", v)
	}
	out := make([]int, len(raw))
	for i, x := range raw {
		out[i] = int(x.(float64))
	}
	return out
}

func keys(m testutil.Msg) string {
	var k []string
	for x := range m {
		k = append(k, x)
	}
	return strings.Join(sortStrings(k), ",")
}

func sortStrings(s []string) []string {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
	return s
}

var codeRE = regexp.MustCompile(`^[1-9A-HJ-NP-Za-km-z]{6}$`)

func TestV2Create(t *testing.T) {
	e := startV2(t, nil)
	seen := map[string]bool{}
	for i := range 20 {
		_, m := e.create(fmt.Sprint("h", i), 4, map[string]any{"room": "MINE"})
		if !codeRE.MatchString(m.Str("room")) || seen[m.Str("room")] {
			t.Fatalf("code %q: want 6 base58 characters, unique", m.Str("room"))
		}
		seen[m.Str("room")] = true
		if keys(m) != "index,instance,region,room,type" || num(m, "index") != 0 || m.Str("instance") != "test-machine" || m.Str("region") != "fra" {
			t.Fatalf("created %v", m)
		}
	}
	// The path prefix on a path-routed listener is the same dialect.
	c := testutil.Dial(t, testutil.URL(e.srv, 0, "/party-v2"))
	c.Send(`{"type":"create","clientId":"p","maxClients":2}`)
	if m := c.Expect("created"); !codeRE.MatchString(m.Str("room")) {
		t.Fatalf("created on /party-v2: %v", m)
	}
	// Any path on the bound listener.
	c = testutil.Dial(t, testutil.URL(e.srv, v2Listener, "/x/y?z=1"))
	c.Send(`{"type":"create","clientId":"p","maxClients":2}`)
	c.Expect("created")
}

func TestV2ControllerURL(t *testing.T) {
	e := startV2(t, func(c *server.Config) { c.Party.InstanceID = "m 1/ü" })
	host, m := e.create("h", 8, map[string]any{"url": "https://ctl.example/{room}?i={instance}"})
	code := m.Str("room")
	want := "https://ctl.example/" + code + "?i=m%201%2F%C3%BC"
	if m.Str("url") != want {
		t.Fatalf("created url %q, want %q", m.Str("url"), want)
	}
	_, j := e.join(code, "g")
	host.Expect("peer_joined")
	if j.Str("url") != want {
		t.Fatalf("joined url %q", j.Str("url"))
	}
	// The reclaim path carries it too.
	g := e.dial()
	g.Send(map[string]any{"type": "join", "clientId": "g", "room": code})
	if j := g.Expect("joined"); j.Str("url") != want {
		t.Fatalf("replacement joined url %q", j.Str("url"))
	}
	resp, body := e.get("/room/" + code)
	if resp.StatusCode != 200 || body != `{"clients":2,"maxClients":8,"origin":"unknown","url":"`+want+`"}` {
		t.Fatalf("GET /room: %d %s", resp.StatusCode, body)
	}
	// Static URLs are kept verbatim; no url, no key.
	for _, u := range []string{"https://static.example/", "https:foo", "HTTPS://A.COM/{room}", "https://user:pw@a.com/", "https://a.com/päth"} {
		_, m := e.create("s", 2, map[string]any{"url": u})
		if got, wantU := m.Str("url"), strings.ReplaceAll(u, "{room}", m.Str("room")); got != wantU {
			t.Fatalf("url %q came back %q", u, got)
		}
	}
	if _, m := e.create("n", 2, nil); m["url"] != nil {
		t.Fatalf("created without a template has url: %v", m)
	}
}

// TestV2CreateErrors runs every create check of the contract, in order.
func TestV2CreateErrors(t *testing.T) {
	e := startV2(t, nil)
	cases := []struct{ name, msg, want string }{
		{"no clientId", `{"type":"create","maxClients":2}`, "clientId is required"},
		{"empty clientId", `{"type":"create","clientId":"","maxClients":2}`, "clientId is required"},
		{"numeric clientId", `{"type":"create","clientId":5,"maxClients":2}`, "clientId is required"},
		{"clientId before maxClients", `{"type":"create","maxClients":0}`, "clientId is required"},
		{"no maxClients", `{"type":"create","clientId":"a"}`, "maxClients must be a positive number"},
		{"maxClients 0", `{"type":"create","clientId":"a","maxClients":0}`, "maxClients must be a positive number"},
		{"maxClients 0.5", `{"type":"create","clientId":"a","maxClients":0.5}`, "maxClients must be a positive number"},
		{"maxClients -1", `{"type":"create","clientId":"a","maxClients":-1}`, "maxClients must be a positive number"},
		{"maxClients string", `{"type":"create","clientId":"a","maxClients":"4"}`, "maxClients must be a positive number"},
		{"maxClients true", `{"type":"create","clientId":"a","maxClients":true}`, "maxClients must be a positive number"},
		{"maxClients before url", `{"type":"create","clientId":"a","url":5}`, "maxClients must be a positive number"},
		{"url null", `{"type":"create","clientId":"a","maxClients":2,"url":null}`, "url must be a string"},
		{"url number", `{"type":"create","clientId":"a","maxClients":2,"url":1}`, "url must be a string"},
		{"url too large", `{"type":"create","clientId":"a","maxClients":2,"url":"https://abc.com/` + strings.Repeat("あ", 200) + `"}`, "url too large"},
		{"url space", `{"type":"create","clientId":"a","maxClients":2,"url":"https://a.com/ x"}`, "url must not contain spaces or control characters"},
		{"url DEL", `{"type":"create","clientId":"a","maxClients":2,"url":"https://a.com/\u007f"}`, "url must not contain spaces or control characters"},
		{"url tab", `{"type":"create","clientId":"a","maxClients":2,"url":"https://a.com/\t"}`, "url must not contain spaces or control characters"},
		{"url empty placeholder", `{"type":"create","clientId":"a","maxClients":2,"url":"https://a.com/{}"}`, "Unknown url placeholder: {}"},
		{"url double brace", `{"type":"create","clientId":"a","maxClients":2,"url":"https://a.com/{{room}}"}`, "Unknown url placeholder: {{room}"},
		{"url ROOM", `{"type":"create","clientId":"a","maxClients":2,"url":"https://a.com/{ROOM}"}`, "Unknown url placeholder: {ROOM}"},
		{"url region", `{"type":"create","clientId":"a","maxClients":2,"url":"https://a.com/{region}"}`, "Unknown url placeholder: {region}"},
		{"url unclosed", `{"type":"create","clientId":"a","maxClients":2,"url":"https://abc.com/{room"}`, "url has an unmatched placeholder brace"},
		{"url stray close", `{"type":"create","clientId":"a","maxClients":2,"url":"https://a.com/}"}`, "url has an unmatched placeholder brace"},
		{"url trailing open", `{"type":"create","clientId":"a","maxClients":2,"url":"https://a.com/{room}{"}`, "url has an unmatched placeholder brace"},
		{"url empty", `{"type":"create","clientId":"a","maxClients":2,"url":""}`, "url is not a valid URL"},
		{"url no host", `{"type":"create","clientId":"a","maxClients":2,"url":"https://"}`, "url is not a valid URL"},
		{"url relative", `{"type":"create","clientId":"a","maxClients":2,"url":"/relative/{room}"}`, "url is not a valid URL"},
		{"url bad port", `{"type":"create","clientId":"a","maxClients":2,"url":"https://a.com:99999/"}`, "url is not a valid URL"},
		{"url bad IPv6", `{"type":"create","clientId":"a","maxClients":2,"url":"https://[::1"}`, "url is not a valid URL"},
		{"url bad escape in host", `{"type":"create","clientId":"a","maxClients":2,"url":"https://exa%mple.com/"}`, "url is not a valid URL"},
		{"url http", `{"type":"create","clientId":"a","maxClients":2,"url":"http://abc.com/{room}"}`, "url must be an https URL"},
		{"url wss", `{"type":"create","clientId":"a","maxClients":2,"url":"wss://a.com/"}`, "url must be an https URL"},
		{"url javascript", `{"type":"create","clientId":"a","maxClients":2,"url":"javascript:alert(1)"}`, "url must be an https URL"},
		{"url file", `{"type":"create","clientId":"a","maxClients":2,"url":"file:///etc/passwd"}`, "url must be an https URL"},
	}
	c := e.dial()
	for _, tc := range cases {
		c.Send(tc.msg)
		if got := c.Expect("error").Str("message"); got != tc.want {
			t.Errorf("%s: error %q, want %q", tc.name, got, tc.want)
		}
	}
	// The same connection is still free to create; then a second create is refused.
	c.Send(`{"type":"create","clientId":"a","maxClients":2.5}`)
	code := c.Expect("created").Str("room")
	c.Send(`{"type":"create","clientId":"b","maxClients":2}`)
	expectExact(t, c, "Already in a room")
	c.Send(`{"type":"join","clientId":"b","room":"` + code + `"}`)
	expectExact(t, c, "Already in a room")
	// maxClients 2.5 admits 3 (connected < 2.5), and GET /room echoes it.
	e.join(code, "g1")
	e.join(code, "g2")
	g := e.dial()
	g.Send(`{"type":"join","clientId":"g3","room":"` + code + `"}`)
	expectExact(t, g, "Room is full")
	if _, body := e.get("/room/" + code); body != `{"clients":3,"maxClients":2.5,"origin":"unknown"}` {
		t.Fatalf("GET /room: %s", body)
	}
}

func TestV2Dispatch(t *testing.T) {
	e := startV2(t, nil)
	c := e.dial()
	for _, tc := range []struct{ msg, want string }{
		{``, "Invalid JSON"},
		{`{"type":"create",`, "Invalid JSON"},
		{`not json`, "Invalid JSON"},
		{`{}`, "Unknown message type"},
		{`{"type":"CREATE"}`, "Unknown message type"},
		{`{"type":"leave"}`, "Unknown message type"},
		{`{"type":5}`, "Unknown message type"},
		{`42`, "Unknown message type"},
		{`"create"`, "Unknown message type"},
		{`[1]`, "Unknown message type"},
		{`true`, "Unknown message type"},
		{`null`, "Unknown message type"},
		{`{"type":"send","data":1}`, "Not in a room"},
		{`{"type":"set_state","data":1}`, "Not in a room"},
		{`{"type":"close_room"}`, "Not in a room"},
		{`{"type":"join","room":"111111"}`, "clientId is required"},
		{`{"type":"join","clientId":"x"}`, "room is required"},
		{`{"type":"join","clientId":"x","room":""}`, "room is required"},
		{`{"type":"join","clientId":"x","room":7}`, "room is required"},
		{`{"type":"join","clientId":"x","room":"zzzzzz"}`, "Room not found"},
	} {
		c.Send(tc.msg)
		if got := c.Expect("error").Str("message"); got != tc.want {
			t.Errorf("%q: error %q, want %q", tc.msg, got, tc.want)
		}
	}
	// Binary frames are JSON too.
	if err := c.Conn.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"create","clientId":"b","maxClients":2}`)); err != nil {
		t.Fatal(err)
	}
	code := c.Expect("created").Str("room")
	// Codes match byte for byte.
	g := e.dial()
	g.Send(`{"type":"join","clientId":"x","room":"` + strings.ToLower(code) + `"}`)
	if strings.ToLower(code) != code {
		expectExact(t, g, "Room not found")
	} else {
		g.Expect("joined")
	}
}

func TestV2Messaging(t *testing.T) {
	e := startV2(t, nil)
	h, m := e.create("host", 8, nil)
	code := m.Str("room")
	a, ja := e.join(code, "a")
	if num(ja, "index") != 1 || fmt.Sprint(ints(t, ja["peers"])) != "[0]" || ja.Str("room") != code || keys(ja) != "index,peers,room,type" {
		t.Fatalf("joined %v", ja)
	}
	if p := h.Expect("peer_joined"); num(p, "index") != 1 || keys(p) != "index,type" {
		t.Fatalf("peer_joined %v", p)
	}
	b, jb := e.join(code, "b")
	if num(jb, "index") != 2 || fmt.Sprint(ints(t, jb["peers"])) != "[0 1]" {
		t.Fatalf("joined %v", jb)
	}
	h.Expect("peer_joined")
	a.Expect("peer_joined")

	// Broadcast: every other member, never the sender; data verbatim.
	a.Send(`{"type":"send","data":{"x":[1,2.50,"é"]}}`)
	for _, r := range []*testutil.Client{h, b} {
		raw := readRaw(t, r)
		if string(raw) != `{"type":"message","from":1,"data":{"x":[1,2.50,"é"]}}` {
			t.Fatalf("relayed %s", raw)
		}
	}
	a.Send(`{"type":"bogus"}`)
	expectExact(t, a, "Unknown message type")
	// No data: no data key.
	h.Send(`{"type":"send"}`)
	if raw := readRaw(t, a); string(raw) != `{"type":"message","from":0}` {
		t.Fatalf("relayed %s", raw)
	}
	readRaw(t, b)
	// Targeted, with 1.0 counting as 1, and to oneself.
	b.Send(`{"type":"send","to":1.0,"data":"hi"}`)
	if raw := readRaw(t, a); string(raw) != `{"type":"message","from":2,"data":"hi"}` {
		t.Fatalf("targeted %s", raw)
	}
	b.Send(`{"type":"send","to":2,"data":"me"}`)
	if raw := readRaw(t, b); string(raw) != `{"type":"message","from":2,"data":"me"}` {
		t.Fatalf("to self %s", raw)
	}
	for _, to := range []string{`"constructor"`, `"1"`, `null`, `-1`, `1.5`, `99`, `1e400`, `9007199254740992`, `{}`} {
		b.Send(`{"type":"send","to":` + to + `,"data":1}`)
		expectExact(t, b, "Target peer not found")
	}
	// The targeted message reached a only: h's next is this marker.
	b.Send(`{"type":"send","data":"marker"}`)
	if raw := readRaw(t, h); string(raw) != `{"type":"message","from":2,"data":"marker"}` {
		t.Fatalf("h got %s", raw)
	}
	// A disconnected slot is no target; peer_left carries its index.
	a.Conn.Close()
	for _, r := range []*testutil.Client{h, b} {
		if p := r.Expect("peer_left"); num(p, "index") != 1 || keys(p) != "index,type" {
			t.Fatalf("peer_left %v", p)
		}
	}
	b.Send(`{"type":"send","to":1,"data":1}`)
	expectExact(t, b, "Target peer not found")
}

func TestV2Reconnect(t *testing.T) {
	e := startV2(t, nil)
	h, m := e.create("host", 2, nil)
	code := m.Str("room")
	g, _ := e.join(code, "guest")
	h.Expect("peer_joined")

	// replacement
	{
		g2 := e.dial()
		g2.Send(`{"type":"join","clientId":"guest","room":"` + code + `"}`)
		if j := g2.Expect("joined"); num(j, "index") != 1 || fmt.Sprint(ints(t, j["peers"])) != "[0]" {
			t.Fatalf("joined %v", j)
		}
		g.ExpectClose(4000)
		// No cap check (the room is full) and nobody hears of it.
		h.Send(`{"type":"send","data":"after"}`)
		if raw := readRaw(t, g2); string(raw) != `{"type":"message","from":0,"data":"after"}` {
			t.Fatalf("g2 got %s", raw)
		}
		h2 := e.dial() // a host replacement does not start the grace either
		h2.Send(`{"type":"join","clientId":"host","room":"` + code + `"}`)
		if j := h2.Expect("joined"); num(j, "index") != 0 {
			t.Fatalf("host rejoined as %v", j)
		}
		h.ExpectClose(4000)
		// g2 heard nothing of it: its next frame is this message.
		h2.Send(`{"type":"send","data":"marker"}`)
		if raw := readRaw(t, g2); string(raw) != `{"type":"message","from":0,"data":"marker"}` {
			t.Fatalf("g2 got %s", raw)
		}
		h, g = h2, g2
	}
	// attacker without the clientId cannot evict
	{
		x := e.dial()
		x.Send(`{"type":"join","clientId":"not-guest","room":"` + code + `"}`)
		expectExact(t, x, "Room is full")
		if n := e.roomClients(code); n != 2 {
			t.Fatalf("clients %d", n)
		}
	}
	// reclaim, and a new joiner takes the next index
	{
		g.Conn.Close()
		if p := h.Expect("peer_left"); num(p, "index") != 1 {
			t.Fatalf("peer_left %v", p)
		}
		testutil.Eventually(t, func() bool { return e.roomClients(code) == 1 })
		// The disconnect freed the cap: a new clientId gets index 2, never 1.
		n, j := e.join(code, "newcomer")
		if num(j, "index") != 2 {
			t.Fatalf("newcomer %v", j)
		}
		h.Expect("peer_joined")
		// The room is full again: the old guest cannot reclaim.
		g3 := e.dial()
		g3.Send(`{"type":"join","clientId":"guest","room":"` + code + `"}`)
		expectExact(t, g3, "Room is full")
		n.Conn.Close()
		h.Expect("peer_left")
		testutil.Eventually(t, func() bool { return e.roomClients(code) == 1 })
		g3.Send(`{"type":"join","clientId":"guest","room":"` + code + `"}`)
		if j := g3.Expect("joined"); num(j, "index") != 1 || fmt.Sprint(ints(t, j["peers"])) != "[0]" {
			t.Fatalf("reclaim %v", j)
		}
		if p := h.Expect("peer_joined"); num(p, "index") != 1 {
			t.Fatalf("peer_joined %v", p)
		}
	}
}

func TestV2State(t *testing.T) {
	e := startV2(t, nil)
	h, m := e.create("host", 8, nil)
	code := m.Str("room")
	g, _ := e.join(code, "g")
	h.Expect("peer_joined")
	// No state before the first set_state: g's next frame is this message.
	h.Send(`{"type":"send","data":"first"}`)
	if raw := readRaw(t, g); string(raw) != `{"type":"message","from":0,"data":"first"}` {
		t.Fatalf("g got %s", raw)
	}

	h.Send(`{"type":"set_state","data": {"turn" : 1}}`)
	if raw := readRaw(t, g); string(raw) != `{"type":"state","data":{"turn" : 1}}` {
		t.Fatalf("state push %s", raw)
	}
	h.Send(`{"type":"bogus"}`) // no echo, no ack
	expectExact(t, h, "Unknown message type")
	h.Send(`{"type":"set_state","data":{"turn":2}}`)
	g.Expect("state")

	// A late joiner gets joined, then the latest state.
	l, _ := e.join(code, "late")
	if s := l.Expect("state"); fmt.Sprint(s["data"]) != "map[turn:2]" {
		t.Fatalf("replay %v", s)
	}
	h.Expect("peer_joined")
	g.Expect("peer_joined")
	// The host's reconnect replays its own snapshot.
	h2 := e.dial()
	h2.Send(`{"type":"join","clientId":"host","room":"` + code + `"}`)
	h2.Expect("joined")
	h2.Expect("state")
	h.ExpectClose(4000)
	// null is kept and replayed as null.
	h2.Send(`{"type":"set_state","data":null}`)
	if raw := readRaw(t, g); string(raw) != `{"type":"state","data":null}` {
		t.Fatalf("null push %s", raw)
	}
	readRaw(t, l)
	g2 := e.dial()
	g2.Send(`{"type":"join","clientId":"g","room":"` + code + `"}`)
	g2.Expect("joined")
	if raw := readRaw(t, g2); string(raw) != `{"type":"state","data":null}` {
		t.Fatalf("null replay %s", raw)
	}
	g.ExpectClose(4000)

	// Guests cannot set state (with or without data); the host needs data.
	g2.Send(`{"type":"set_state","data":1}`)
	expectExact(t, g2, "Only the host can set state")
	g2.Send(`{"type":"set_state"}`)
	expectExact(t, g2, "Only the host can set state")
	h2.Send(`{"type":"set_state"}`)
	expectExact(t, h2, "State data is required")

	// The cap: 16384 bytes as JSON.stringify writes data.
	for _, tc := range []struct {
		name string
		data string
		ok   bool
	}{
		{"16382 letters", `"` + strings.Repeat("a", 16382) + `"`, true},
		{"16383 letters", `"` + strings.Repeat("a", 16383) + `"`, false},
		{"8191 quotes", `"` + strings.Repeat(`\"`, 8191) + `"`, true},
		{"8192 quotes", `"` + strings.Repeat(`\"`, 8192) + `"`, false},
		{"5460 U+2028", `"` + strings.Repeat("\u2028", 5460) + `"`, true},
		{"5461 U+2028", `"` + strings.Repeat(`\u2028`, 5461) + `"`, false},
		{"6000 中", `"` + strings.Repeat("中", 6000) + `"`, false},
		{"whitespace does not count", `[` + strings.Repeat(" 1 ,", 8000) + ` 1 ]`, true},
	} {
		h2.Send(`{"type":"set_state","data":` + tc.data + `}`)
		if tc.ok {
			if s := g2.Expect("state"); s["data"] == nil {
				t.Fatalf("%s: %v", tc.name, s)
			}
			readRaw(t, l)
			continue
		}
		expectExact(t, h2, "State too large")
	}
}

func TestV2CloseRoom(t *testing.T) {
	e := startV2(t, nil)
	h, m := e.create("host", 8, nil)
	code := m.Str("room")
	g, _ := e.join(code, "g")
	h.Expect("peer_joined")
	g.Send(`{"type":"close_room"}`)
	expectExact(t, g, "Only the host can close the room")
	if n := e.roomClients(code); n != 2 {
		t.Fatalf("clients %d after a guest's close_room", n)
	}
	h.Send(`{"type":"close_room"}`)
	h.ExpectClose(4001)
	g.ExpectClose(4001)
	if n := e.roomClients(code); n != -1 {
		t.Fatalf("GET /room after close: clients %d, want 404", n)
	}
	x := e.dial()
	x.Send(`{"type":"join","clientId":"host","room":"` + code + `"}`)
	expectExact(t, x, "Room not found")
}

func TestV2HostGrace(t *testing.T) {
	const grace = 400 * time.Millisecond
	e := startV2(t, func(c *server.Config) { c.Party.HostGrace = grace })

	t.Run("expiry closes the room", func(t *testing.T) {
		e := e.with(t)
		h, g, code := e.pair()
		h.Conn.Close()
		dropped := time.Now()
		if p := g.Expect("peer_left"); num(p, "index") != 0 {
			t.Fatalf("peer_left %v", p)
		}
		// Within the window the room is live, and slot 0 is no target.
		g.Send(`{"type":"send","to":0,"data":1}`)
		expectExact(t, g, "Target peer not found")
		n, _ := e.join(code, "n")
		g.Expect("peer_joined")
		g.ExpectClose(4001)
		n.ExpectClose(4001)
		if since := time.Since(dropped); since < grace {
			t.Fatalf("closed %v after the host dropped, want >= %v", since, grace)
		}
		if c := e.roomClients(code); c != -1 {
			t.Fatalf("room still there: %d", c)
		}
	})
	t.Run("host reclaim cancels it", func(t *testing.T) {
		e := e.with(t)
		h, g, code := e.pair()
		h.Conn.Close()
		g.Expect("peer_left")
		h2, j := e.join(code, "host")
		if num(j, "index") != 0 {
			t.Fatalf("host back as %v", j)
		}
		if p := g.Expect("peer_joined"); num(p, "index") != 0 {
			t.Fatalf("peer_joined %v", p)
		}
		time.Sleep(2 * grace) // long past the grace: nothing may happen
		h2.Send(`{"type":"send","data":"still here"}`)
		g.Expect("message")
	})
	t.Run("every host drop restarts it", func(t *testing.T) {
		e := e.with(t)
		h, g, code := e.pair()
		h.Conn.Close()
		g.Expect("peer_left")
		time.Sleep(grace * 3 / 4)
		h2, _ := e.join(code, "host")
		g.Expect("peer_joined")
		h2.Conn.Close()
		g.Expect("peer_left")
		again := time.Now()
		g.ExpectClose(4001)
		if since := time.Since(again); since < grace*3/4 {
			t.Fatalf("closed %v after the second drop: the first timer fired", since)
		}
	})
	t.Run("guest drops arm nothing", func(t *testing.T) {
		e := e.with(t)
		h, g, code := e.pair()
		g.Conn.Close()
		h.Expect("peer_left")
		time.Sleep(2 * grace) // long past the grace: nothing may happen
		h.Send(`{"type":"bogus"}`)
		expectExact(t, h, "Unknown message type")
		if c := e.roomClients(code); c != 1 {
			t.Fatalf("clients %d", c)
		}
	})
	t.Run("a host alone ends the room at once", func(t *testing.T) {
		e := e.with(t)
		h, m := e.create("host", 8, nil)
		code := m.Str("room")
		h.Conn.Close()
		testutil.Eventually(t, func() bool { return e.roomClients(code) == -1 })
		x := e.dial()
		x.Send(`{"type":"join","clientId":"host","room":"` + code + `"}`)
		expectExact(t, x, "Room not found")
	})
	t.Run("the last member to leave ends the room", func(t *testing.T) {
		e := e.with(t)
		h, g, code := e.pair()
		g.Conn.Close()
		h.Expect("peer_left")
		h.Conn.Close()
		testutil.Eventually(t, func() bool { return e.roomClients(code) == -1 })
	})
}

// rawHTTP sends a raw request to addr and returns the whole response.
func rawHTTP(t *testing.T, addr, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(bufio.NewReader(c))
	return string(b)
}

func TestV2HTTP(t *testing.T) {
	e := startV2(t, nil)
	_, m := e.create("host", 8, nil)
	code := m.Str("room")

	type check struct {
		path, status, body, ctype string
		cors, instance            bool
	}
	for _, tc := range []check{
		{"/health", "200", `{"status":"ok"}`, "application/json", true, false},
		{"/room/" + code, "200", `{"clients":1,"maxClients":8,"origin":"unknown"}`, "application/json", true, true},
		{"/room/" + code + "?x=1", "200", `{"clients":1,"maxClients":8,"origin":"unknown"}`, "application/json", true, true},
		{"/room/zzzzzz", "404", `{"error":"Room not found"}`, "application/json", true, true},
		{"/room/%E0", "404", `{"error":"Room not found"}`, "application/json", true, true},
		{"/", "200", "rooms: 1\nclients: 1\n", "text/plain; charset=utf-8", false, false},
		{"/room", "200", "rooms: 1\nclients: 1\n", "text/plain; charset=utf-8", false, false},
		{"/room/a/b", "200", "rooms: 1\nclients: 1\n", "text/plain; charset=utf-8", false, false},
	} {
		resp, body := e.get(tc.path)
		if fmt.Sprint(resp.StatusCode) != tc.status || body != tc.body || resp.Header.Get("Content-Type") != tc.ctype {
			t.Errorf("GET %s: %d %q %q", tc.path, resp.StatusCode, resp.Header.Get("Content-Type"), body)
		}
		if got := resp.Header.Get("Access-Control-Allow-Origin"); (got == "*") != tc.cors {
			t.Errorf("GET %s: CORS %q", tc.path, got)
		}
		if got, ok := resp.Header["X-Instance-Id"]; ok != tc.instance || (ok && got[0] != "test-machine") {
			t.Errorf("GET %s: X-Instance-Id %v", tc.path, got)
		}
	}
	// The method is ignored.
	if resp := rawHTTP(t, e.srv.Addrs()[v2Listener].String(), "POST /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"); !strings.HasPrefix(resp, "HTTP/1.1 200 OK") {
		t.Errorf("POST /health: %q", resp)
	}
	// An upgrade to /room/<code> gets the room, not a socket.
	_, resp, err := websocket.DefaultDialer.Dial(e.url+"room/"+code, nil)
	if err == nil || resp == nil || resp.StatusCode != 200 || resp.Header.Get("X-Instance-Id") != "test-machine" {
		t.Errorf("upgrade to /room/<code>: %v %v", err, resp)
	}

	// Metrics.
	_, metrics := e.get("/metrics")
	for _, want := range []string{
		"# TYPE party_sockets_clients gauge\n",
		`party_sockets_clients{instance="test-machine",region="FRA",version="partyline"} 1` + "\n",
		`party_sockets_rooms{instance="test-machine",region="FRA",version="partyline"} 1` + "\n",
		`party_sockets_connections_total{instance="test-machine",region="FRA",version="partyline",origin="unknown"} 1` + "\n",
		`party_sockets_rooms_created_total{instance="test-machine",region="FRA",version="partyline",origin="unknown"} 1` + "\n",
		`party_sockets_clients_by_origin{instance="test-machine",region="FRA",version="partyline",origin="unknown"} 1` + "\n",
		"# TYPE process_resident_memory_bytes gauge\n",
		"# TYPE process_uptime_seconds counter\n",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, metrics)
		}
	}
	if resp, _ := e.get("/metrics"); resp.Header.Get("Content-Type") != "text/plain; version=0.0.4" || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("/metrics headers %v", resp.Header)
	}

	// The party listener answers the same endpoints, and 426 otherwise.
	v1 := "http://" + e.srv.Addrs()[v1Listener].String()
	pc := testutil.Dial(t, testutil.URL(e.srv, v1Listener, "/"))
	pc.Send(`{"type":"create","clientId":"a","maxClients":3}`)
	created := pc.Expect("created")
	if created.Str("instance") != "test-machine" || created.Str("region") != "fra" || created.Str("token") == "" {
		t.Fatalf("party created %v", created)
	}
	if resp, body := httpGet(t, v1+"/room/"+strings.ToLower(created.Str("room"))); resp.StatusCode != 200 || body != `{"clients":1,"maxClients":3,"origin":"unknown"}` || resp.Header.Get("Access-Control-Allow-Origin") != "*" {
		t.Errorf("party GET /room: %d %s", resp.StatusCode, body)
	}
	if resp, body := httpGet(t, v1+"/health"); resp.StatusCode != 200 || body != `{"status":"ok"}` {
		t.Errorf("party /health: %d %s", resp.StatusCode, body)
	}
	if resp, _ := httpGet(t, v1+"/"); resp.StatusCode != 426 {
		t.Errorf("party /: %d, want 426", resp.StatusCode)
	}
	// A path-routed listener answers none of them.
	for path, want := range map[string]int{"/health": 404, "/party-v2/health": 404, "/party-v2": 426} {
		if resp, _ := httpGet(t, "http://"+e.srv.Addrs()[0].String()+path); resp.StatusCode != want {
			t.Errorf("path-routed %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}

func TestV2OriginInRoomInfo(t *testing.T) {
	e := startV2(t, nil)
	c, err := testutil.TryDial(t, e.url, http.Header{"Origin": {"https://game.example"}})
	if err != nil {
		t.Fatal(err)
	}
	c.Send(`{"type":"create","clientId":"h","maxClients":1}`)
	code := c.Expect("created").Str("room")
	if _, body := e.get("/room/" + code); body != `{"clients":1,"maxClients":1,"origin":"https://game.example"}` {
		t.Fatalf("GET /room: %s", body)
	}
}

// runServer starts a server whose shutdown the test controls: stop cancels
// its context and returns a channel closed when Run has returned.
func runServer(t *testing.T, cfg server.Config) (*server.Server, func() <-chan struct{}) {
	t.Helper()
	s, err := assemble.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := s.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
		close(done)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	select {
	case <-s.Ready():
	case <-time.After(10 * time.Second):
		t.Fatal("not ready")
	}
	return s, func() <-chan struct{} { cancel(); return done }
}

func TestV2Drain(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drain time.Duration
	}{
		{"the room ends first", 20 * time.Second},
		{"the drain window ends first", 700 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testutil.Config(t)
			cfg.Listeners = []server.Listener{{Addr: "127.0.0.1:0", Dialect: "party-v2"}}
			cfg.Drain = tc.drain
			s, stop := runServer(t, cfg)
			e := &v2env{t: t, srv: s, url: testutil.URL(s, 0, "/"), base: "http://" + s.Addrs()[0].String()}
			h, m := e.create("host", 8, nil)
			code := m.Str("room")
			g, _ := e.join(code, "g")
			h.Expect("peer_joined")
			idle := e.dial() // no slot: closed as any connection is

			signalled := time.Now()
			done := stop()
			idle.ExpectClose(1001)
			// The room keeps serving; only create is refused.
			h.Send(`{"type":"create","clientId":"x","maxClients":2}`)
			expectExact(t, h, "Server draining")
			g.Send(`{"type":"send","data":"during"}`)
			if raw := readRaw(t, h); string(raw) != `{"type":"message","from":1,"data":"during"}` {
				t.Fatalf("host got %s", raw)
			}
			if tc.drain > time.Second {
				h.Conn.Close()
				g.Expect("peer_left")
				g.Conn.Close()
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("the server did not exit once its last room ended")
				}
				if since := time.Since(signalled); since > tc.drain/2 {
					t.Fatalf("exit took %v", since)
				}
				return
			}
			h.ExpectClose(1001)
			g.ExpectClose(1001)
			if since := time.Since(signalled); since < tc.drain*3/4 {
				t.Fatalf("members closed %v after the signal, before the drain window (%v) ended", since, tc.drain)
			}
			<-done
		})
	}
}
