package notify_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/dialecttest"
	"partyline/dialect/notify"
	"partyline/httpapi"
	"partyline/internal/testutil"
	"partyline/server"
)

type env struct {
	t   *testing.T
	s   *server.Server
	key string
}

func start(t *testing.T, mutate func(*server.Config)) *env {
	e := &env{t: t}
	e.s = testutil.Start(t, func(c *server.Config) {
		c.EventLoops = 4
		if mutate != nil {
			mutate(c)
		}
		e.key = c.APIKey
	})
	return e
}

func (e *env) dial() *testutil.Client { return testutil.Dial(e.t, testutil.URL(e.s, 0, "/notify")) }

// user dials and authenticates as id (a JSON value).
func (e *env) user(id string) *testutil.Client {
	e.t.Helper()
	c := e.dial()
	auth(e.t, c, id)
	return c
}

func auth(t *testing.T, c *testutil.Client, id string) {
	t.Helper()
	c.Send(`{"type":"auth","userId":` + id + `}`)
	m := c.Expect("authenticated")
	var want any
	json.Unmarshal([]byte(id), &want)
	if len(m) != 2 || !reflect.DeepEqual(m["userId"], want) {
		t.Fatalf("got %v, want userId %s", m, id)
	}
}

// post sends body to path with the env's API key and decodes the JSON reply.
func (e *env) post(path, body string) (int, map[string]any) {
	e.t.Helper()
	return e.postKey(path, body, e.key)
}

func (e *env) postKey(path, body, key string) (int, map[string]any) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", testutil.HTTPURL(e.s, path), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		e.t.Fatalf("%s %d: body %q is not a JSON object", path, resp.StatusCode, b)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Fatalf("%s: Content-Type %q", path, ct)
	}
	return resp.StatusCode, m
}

func (e *env) notify(userID, notification string) map[string]any {
	e.t.Helper()
	st, m := e.post("/api/notify", `{"userId":`+userID+`,"notification":`+notification+`}`)
	if st != http.StatusOK {
		e.t.Fatalf("notify: %d %v", st, m)
	}
	return m
}

// expectPush reads a pushed message of typ with fields, and a timestamp in
// milliseconds no earlier than since.
func expectPush(t *testing.T, c *testutil.Client, since int64, want map[string]any) {
	t.Helper()
	m := c.Read()
	ts, ok := m["timestamp"].(float64)
	if !ok || int64(ts) < since || int64(ts) > time.Now().UnixMilli() {
		t.Fatalf("timestamp of %v is not the current time in milliseconds", m)
	}
	delete(m, "timestamp")
	if !reflect.DeepEqual(map[string]any(m), want) {
		t.Fatalf("got %v, want %v", m, want)
	}
}

func TestAuth(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c := e.dial()
	for _, id := range []string{`"u1"`, `"u1"`, `"user \"two\" é"`, `42`, `-7.5`, `"` + strings.Repeat("x", 256) + `"`} {
		auth(t, c, id)
	}
	const invalid = "Invalid userId: a non-empty string of at most 256 bytes, or a number"
	for _, tc := range []struct{ name, msg, want string }{
		{"no userId", `{"type":"auth"}`, invalid},
		{"empty userId", `{"type":"auth","userId":""}`, invalid},
		{"long userId", `{"type":"auth","userId":"` + strings.Repeat("x", 257) + `"}`, invalid},
		{"null userId", `{"type":"auth","userId":null}`, invalid},
		{"bool userId", `{"type":"auth","userId":true}`, invalid},
		{"object userId", `{"type":"auth","userId":{"id":1}}`, invalid},
		{"unknown type", `{"type":"subscribe","userId":"u1"}`, "Unknown message type: subscribe"},
		{"no type", `{"userId":"u1"}`, `Missing or invalid type: send {"type":"auth","userId":...}`},
		{"type not a string", `{"type":["auth"]}`, `Missing or invalid type: send {"type":"auth","userId":...}`},
		{"invalid JSON", `{"type":"auth",`, "Invalid JSON"},
		{"array", `[{"type":"auth","userId":"u1"}]`, "Invalid message: expected a JSON object"},
		{"null", `null`, "Invalid message: expected a JSON object"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.Send(tc.msg)
			m := c.Read()
			if !reflect.DeepEqual(map[string]any(m), map[string]any{"type": "error", "message": tc.want}) {
				t.Fatalf("got %v, want error %q", m, tc.want)
			}
		})
	}
	c.Conn.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"auth","userId":"u1"}`))
	if m := c.Expect("error"); !strings.Contains(m.Str("message"), "binary") {
		t.Fatalf("binary: %v", m)
	}
	// A failed auth kept the last identity (the 256-byte one).
	if m := e.notify(`"`+strings.Repeat("x", 256)+`"`, `{}`); m["connections"] != float64(1) {
		t.Fatalf("notify after errors: %v", m)
	}
}

func TestNotify(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	a1, a2 := e.user(`"alice"`), e.user(`"alice"`)
	b := e.user(`"bob"`)
	anon := e.dial()

	since := time.Now().UnixMilli()
	m := e.notify(`"alice"`, `{"title":"New message","body":"hi \"there\"","meta":{"n":[1,2]}}`)
	if !reflect.DeepEqual(m, map[string]any{"delivered": true, "connections": float64(2)}) {
		t.Fatalf("response %v", m)
	}
	for _, c := range []*testutil.Client{a1, a2} {
		expectPush(t, c, since, map[string]any{"type": "notification", "title": "New message", "body": "hi \"there\"",
			"meta": map[string]any{"n": []any{float64(1), float64(2)}}})
	}
	// Nobody else got it: their next message is the broadcast below.
	m = e.notify(`"nobody"`, `{"title":"x"}`)
	if !reflect.DeepEqual(m, map[string]any{"delivered": false, "connections": float64(0)}) {
		t.Fatalf("unknown user: %v", m)
	}
	since = time.Now().UnixMilli()
	st, m := e.post("/api/broadcast", `{"message":"maintenance at noon","level":2}`)
	if st != 200 || !reflect.DeepEqual(m, map[string]any{"connections": float64(4)}) {
		t.Fatalf("broadcast: %d %v", st, m)
	}
	for _, c := range []*testutil.Client{a1, a2, b, anon} { // unauthenticated connections too
		expectPush(t, c, since, map[string]any{"type": "broadcast", "message": "maintenance at noon", "level": float64(2)})
	}
}

// TestSpreadSemantics: the seed builds {type:'notification', ...fields,
// timestamp}: a "type" field of the notification wins, "timestamp" is the
// server's.
func TestSpreadSemantics(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c := e.user(`"u"`)
	since := time.Now().UnixMilli()
	e.notify(`"u"`, `{"type":"alert","timestamp":1,"x":null}`)
	expectPush(t, c, since, map[string]any{"type": "alert", "x": nil})
	e.notify(`"u"`, `{}`)
	expectPush(t, c, since, map[string]any{"type": "notification"})
	st, _ := e.post("/api/broadcast", `{"type":"news","timestamp":"later"}`)
	if st != 200 {
		t.Fatal(st)
	}
	expectPush(t, c, since, map[string]any{"type": "news"})
	e.post("/api/broadcast", ` {} `)
	expectPush(t, c, since, map[string]any{"type": "broadcast"})
}

func TestNumericAndStringIDs(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	n := e.user(`42`)
	s := e.user(`"42"`)
	m := e.notify(`42`, `{"k":1}`)
	if m["connections"] != float64(2) {
		t.Fatalf("42 and \"42\" are one user: %v", m)
	}
	n.Expect("notification")
	s.Expect("notification")
}

func TestReauthAndDisconnect(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c := e.user(`"first"`)
	other := e.user(`"first"`)
	auth(t, c, `"second"`) // moves the connection
	if m := e.notify(`"first"`, `{}`); m["connections"] != float64(1) {
		t.Fatalf("first after re-auth: %v", m)
	}
	other.Expect("notification")
	if m := e.notify(`"second"`, `{}`); m["connections"] != float64(1) {
		t.Fatalf("second: %v", m)
	}
	c.Expect("notification")
	c.Conn.Close()
	other.Conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m1, m2 := e.notify(`"first"`, `{}`), e.notify(`"second"`, `{}`)
		st, b := e.post("/api/broadcast", `{}`)
		if m1["delivered"] == false && m2["delivered"] == false && st == 200 && b["connections"] == float64(0) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("closed connections still registered: %v %v %v", m1, m2, b)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	for _, tc := range []struct {
		name, path, body string
		status           int
		substr           string
	}{
		{"notify: invalid JSON", "/api/notify", `{"userId":`, 400, "invalid body"},
		{"notify: empty body", "/api/notify", ``, 400, "invalid body"},
		{"notify: array", "/api/notify", `[]`, 400, "invalid body"},
		{"notify: null", "/api/notify", `null`, 400, "invalid userId"},
		{"notify: no userId", "/api/notify", `{"notification":{}}`, 400, "invalid userId"},
		{"notify: empty userId", "/api/notify", `{"userId":"","notification":{}}`, 400, "invalid userId"},
		{"notify: bool userId", "/api/notify", `{"userId":true,"notification":{}}`, 400, "invalid userId"},
		{"notify: no notification", "/api/notify", `{"userId":"u"}`, 400, "invalid notification"},
		{"notify: null notification", "/api/notify", `{"userId":"u","notification":null}`, 400, "invalid notification"},
		{"notify: string notification", "/api/notify", `{"userId":"u","notification":"hi"}`, 400, "invalid notification"},
		{"notify: array notification", "/api/notify", `{"userId":"u","notification":[1]}`, 400, "invalid notification"},
		{"notify: control character", "/api/notify", "{\"userId\":\"u\",\"notification\":{\"a\":\"\x01\"}}", 400, "invalid body"},
		{"notify: too large", "/api/notify", `{"userId":"u","notification":{"a":"` + strings.Repeat("x", 64<<10) + `"}}`, 413, "too large"},
		{"broadcast: invalid JSON", "/api/broadcast", `{"a":`, 400, "JSON object"},
		{"broadcast: empty body", "/api/broadcast", ``, 400, "JSON object"},
		{"broadcast: array", "/api/broadcast", `[{"a":1}]`, 400, "JSON object"},
		{"broadcast: string", "/api/broadcast", `"hi"`, 400, "JSON object"},
		{"broadcast: null", "/api/broadcast", `null`, 400, "JSON object"},
		{"broadcast: two values", "/api/broadcast", `{} {}`, 400, "JSON object"},
		{"broadcast: too large", "/api/broadcast", `{"a":"` + strings.Repeat("x", 64<<10) + `"}`, 413, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m := e.post(tc.path, tc.body)
			msg, _ := m["error"].(string)
			if st != tc.status || len(m) != 1 || !strings.Contains(msg, tc.substr) {
				t.Fatalf("%d %v, want %d with an error containing %q", st, m, tc.status, tc.substr)
			}
		})
	}
	for _, p := range []string{"/api/notify", "/api/broadcast"} {
		resp, err := http.Get(testutil.HTTPURL(e.s, p))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// 405 from the mux, or 404 when a catch-all (the web UI) owns GET.
		if resp.StatusCode != http.StatusMethodNotAllowed && resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET %s: %d, want 405 or 404", p, resp.StatusCode)
		}
	}
}

func TestAPIKey(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.APIKey = "s3cret" })
	c := e.user(`"u"`)
	for _, path := range []string{"/api/notify", "/api/broadcast"} {
		body := `{"userId":"u","notification":{"n":1}}`
		for _, tc := range []struct {
			name, key string
			status    int
		}{
			{"no key", "", 401},
			{"wrong key", "guess", 403},
			{"right key", "s3cret", 200},
		} {
			t.Run(path+" "+tc.name, func(t *testing.T) {
				st, m := e.postKey(path, body, tc.key)
				if st != tc.status {
					t.Fatalf("%d %v, want %d", st, m, tc.status)
				}
				if st != 200 {
					if _, ok := m["error"].(string); !ok {
						t.Fatalf("error body %v", m)
					}
				}
			})
		}
	}
	// Only the two authorised requests reached the connection.
	c.Expect("notification")
	c.Expect("broadcast")
	st, _ := e.post("/api/broadcast", `{"last":true}`)
	if st != 200 {
		t.Fatal(st)
	}
	if m := c.Expect("broadcast"); m["last"] != true {
		t.Fatalf("got %v", m)
	}
}

// TestLoopbackOnlyWithoutKey: with no API key the endpoints answer
// loopback clients only (the server's api middleware around Routes).
func TestLoopbackOnlyWithoutKey(t *testing.T) {
	t.Parallel()
	d := notify.New(notify.Defaults())
	mux := http.NewServeMux()
	d.Routes(mux, func(h http.Handler) http.Handler { return httpapi.RequireKey("", h) })
	for _, tc := range []struct {
		remote string
		status int
	}{{"127.0.0.1:4000", 200}, {"[::1]:4000", 200}, {"192.0.2.7:4000", 403}, {"10.1.2.3:4000", 403}} {
		for _, path := range []string{"/api/notify", "/api/broadcast"} {
			req := httptest.NewRequest("POST", path, strings.NewReader(`{"userId":"u","notification":{}}`))
			req.RemoteAddr = tc.remote
			req.Host = "localhost" // keyless: a non-loopback Host is refused (DNS rebinding)
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, req)
			if rec.Code != tc.status {
				t.Errorf("%s from %s: %d %s, want %d", path, tc.remote, rec.Code, rec.Body, tc.status)
			}
		}
	}
}

func TestConcurrentNotify(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	const conns, posts = 6, 40
	cs := make([]*testutil.Client, conns)
	for i := range cs {
		cs[i] = e.user(`"busy"`)
	}
	var wg sync.WaitGroup
	for i := range posts {
		wg.Go(func() {
			m := e.notify(`"busy"`, `{"i":`+string(codec.AppendInt(nil, int64(i)))+`}`)
			if m["connections"] != float64(conns) {
				t.Errorf("notify %d: %v", i, m)
			}
		})
	}
	wg.Wait()
	for _, c := range cs {
		seen := map[float64]bool{}
		for range posts {
			m := c.Expect("notification")
			seen[m["i"].(float64)] = true
		}
		if len(seen) != posts {
			t.Fatalf("a connection got %d distinct notifications of %d", len(seen), posts)
		}
	}
}

func TestBoundListener(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) {
		c.Listeners = append(c.Listeners, server.Listener{Addr: "127.0.0.1:0", Dialect: "notify"})
	})
	c := testutil.Dial(t, testutil.URL(e.s, 1, "/"))
	auth(t, c, `"bound"`)
	p := e.user(`"bound"`) // the /notify prefix on the other listener: same users
	if m := e.notify(`"bound"`, `{"ok":1}`); m["connections"] != float64(2) {
		t.Fatalf("got %v", m)
	}
	c.Expect("notification")
	p.Expect("notification")
}

// FuzzNotify feeds a sequence of messages (split at 0x00) to a session and
// then pushes to whatever user it registered. It must never panic and every
// frame must be a JSON object of a known shape.
func FuzzNotify(f *testing.F) {
	for _, s := range []string{
		`{"type":"auth","userId":"u1"}`, `{"type":"auth","userId":42}`, "{\"type\":\"auth\",\"userId\":\"a\"}\x00{\"type\":\"auth\",\"userId\":\"b\"}",
		`{"type":"auth","userId":"\u00e9\"\\"}`, `{"type":"auth","userId":1e400}`, `{"type":"auth","userId":-0}`,
		`{"type":"ping"}`, `[`, `null`, "\xff", `{"type":"auth","userId":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := notify.New(notify.Defaults())
		c := dialecttest.New(dialect.Request{Path: "/notify"})
		s := d.Open(c)
		var lastID []byte
		for _, msg := range dialecttest.Split(data, 16) {
			s.OnMessage(codec.KindText, msg)
			for _, p := range c.Frames() {
				m := checkFrame(t, p)
				if m["type"] == "authenticated" {
					lastID, _ = json.Marshal(m["userId"])
				}
			}
		}
		if lastID != nil { // the user it registered last is reachable over HTTP
			rec := postTo(d, "/api/notify", `{"userId":`+string(lastID)+`,"notification":{"x":1}}`)
			if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"connections":1`) {
				t.Fatalf("notify %s: %d %s", lastID, rec.Code, rec.Body)
			}
		}
		postTo(d, "/api/broadcast", `{"y":2}`)
		s.OnClose()
		for _, p := range c.Frames() {
			checkFrame(t, p)
		}
		if n := d.Rooms(); n != 0 {
			t.Fatalf("%d users left after the connection closed", n)
		}
	})
}

// FuzzHTTP posts arbitrary bodies to both endpoints: the answer is always
// JSON with status 200, 400 or 413, and what reaches a connection is a JSON
// object.
func FuzzHTTP(f *testing.F) {
	for _, s := range []string{`{"userId":"u","notification":{"a":1}}`, `{"userId":"u","notification":{"type":"x","timestamp":1}}`,
		`{"userId":"u"}`, `{}`, `[]`, `null`, `{"userId":"u","notification":{"a":1,"a":2}}`, `{"userId":"u","notification":{"\u0000":"\ud800"}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		d := notify.New(notify.Config{MaxBody: 4096})
		c := dialecttest.New(dialect.Request{Path: "/notify"})
		s := d.Open(c)
		s.OnMessage(codec.KindText, []byte(`{"type":"auth","userId":"u"}`))
		c.Frames()
		for _, path := range []string{"/api/notify", "/api/broadcast"} {
			rec := postTo(d, path, string(body))
			switch rec.Code {
			case 200, 400, 413:
			default:
				t.Fatalf("%s: status %d", path, rec.Code)
			}
			var m map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
				t.Fatalf("%s: body %q: %v", path, rec.Body, err)
			}
		}
		for _, p := range c.Frames() {
			checkFrame(t, p)
		}
		s.OnClose()
	})
}

func postTo(d *notify.Dialect, path, body string) *httptest.ResponseRecorder {
	mux := http.NewServeMux()
	d.Routes(mux, func(h http.Handler) http.Handler { return h })
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("POST", path, strings.NewReader(body)))
	return rec
}

func checkFrame(t *testing.T, p []byte) map[string]any {
	t.Helper()
	if !json.Valid(p) {
		t.Fatalf("frame %q is not valid JSON", p)
	}
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("frame %q: %v", p, err)
	}
	switch m["type"] {
	case "authenticated":
		if len(m) != 2 || m["userId"] == nil {
			t.Fatalf("frame %s", p)
		}
	case "error":
		if _, ok := m["message"].(string); !ok || len(m) != 2 {
			t.Fatalf("frame %s", p)
		}
	default:
		if _, ok := m["timestamp"].(json.Number); !ok {
			t.Fatalf("unexpected frame %s", p)
		}
	}
	return m
}
