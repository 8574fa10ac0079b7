package echo_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/dialecttest"
	"partyline/dialect/echo"
	"partyline/internal/testutil"
	"partyline/server"
)

const welcome = `{"type":"welcome","message":"Connected to server"}`

// readRaw returns the next message's bytes.
func readRaw(t *testing.T, c *testutil.Client) string {
	t.Helper()
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, b, err := c.Conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("message type %d, want text", typ)
	}
	return string(b)
}

func TestEcho(t *testing.T) {
	t.Parallel()
	s := testutil.Start(t, nil)
	cases := []struct {
		name, in, want string
	}{
		{"object", `{"hello":"world","n":1}`, `{"type":"echo","data":{"hello":"world","n":1}}`},
		{"nested", `{"a":[1,{"b":null}],"c":{"d":true}}`, `{"type":"echo","data":{"a":[1,{"b":null}],"c":{"d":true}}}`},
		{"array", `[1,2,3]`, `{"type":"echo","data":[1,2,3]}`},
		{"string", `"hi"`, `{"type":"echo","data":"hi"}`},
		{"number", `-12.5e3`, `{"type":"echo","data":-12.5e3}`},
		{"big integer kept exactly", `12345678901234567890123`, `{"type":"echo","data":12345678901234567890123}`},
		{"null", `null`, `{"type":"echo","data":null}`},
		{"false", `false`, `{"type":"echo","data":false}`},
		{"inner whitespace kept, outer trimmed", " {\"a\" : 1}\n", `{"type":"echo","data":{"a" : 1}}`},
		{"unicode and escapes", `{"s":"é😀\"\\\u0001"}`, `{"type":"echo","data":{"s":"é😀\"\\\u0001"}}`},
		{"type field of its own", `{"type":"chat"}`, `{"type":"echo","data":{"type":"chat"}}`},
		{"invalid: not JSON", `hello`, `{"type":"error","message":"Invalid JSON"}`},
		{"invalid: truncated", `{"a":`, `{"type":"error","message":"Invalid JSON"}`},
		{"invalid: trailing comma", `[1,]`, `{"type":"error","message":"Invalid JSON"}`},
		{"invalid: two values", `{} {}`, `{"type":"error","message":"Invalid JSON"}`},
		{"invalid: empty", ``, `{"type":"error","message":"Invalid JSON"}`},
		{"invalid: single quotes", `{'a':1}`, `{"type":"error","message":"Invalid JSON"}`},
		{"invalid: control character in string", "\"a\x01b\"", `{"type":"error","message":"Invalid JSON"}`},
	}
	c := testutil.Dial(t, testutil.URL(s, 0, "/echo"))
	if got := readRaw(t, c); got != welcome {
		t.Fatalf("welcome %s, want %s", got, welcome)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.Send([]byte(tc.in))
			if got := readRaw(t, c); got != tc.want {
				t.Fatalf("echo of %q:\n got %s\nwant %s", tc.in, got, tc.want)
			}
		})
	}
	// The connection survived every error: one more round trip.
	c.Send(`{"still":"open"}`)
	if got := readRaw(t, c); got != `{"type":"echo","data":{"still":"open"}}` {
		t.Fatalf("after errors: %s", got)
	}
}

func TestEchoBinaryIsAnError(t *testing.T) {
	t.Parallel()
	s := testutil.Start(t, nil)
	c := testutil.Dial(t, testutil.URL(s, 0, "/echo"))
	c.Expect("welcome")
	c.Conn.WriteMessage(websocket.BinaryMessage, []byte(`{"a":1}`))
	m := c.Expect("error")
	if !strings.Contains(m.Str("message"), "binary") {
		t.Fatalf("binary frame: %v", m)
	}
	c.Send(`1`)
	if m := c.Expect("echo"); m["data"] != float64(1) {
		t.Fatalf("after binary: %v", m)
	}
}

func TestEchoPaths(t *testing.T) {
	t.Parallel()
	s := testutil.Start(t, func(c *server.Config) {
		c.Listeners = append(c.Listeners, server.Listener{Addr: "127.0.0.1:0", Dialect: "echo"})
	})
	for _, tc := range []struct {
		name string
		url  string
	}{
		{"prefix", testutil.URL(s, 0, "/echo")},
		{"prefix with query", testutil.URL(s, 0, "/echo?x=1")},
		{"prefix with trailing slash", testutil.URL(s, 0, "/echo/")},
		{"bound listener root", testutil.URL(s, 1, "/")},
		{"bound listener any path", testutil.URL(s, 1, "/some/where?x=1")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := testutil.Dial(t, tc.url)
			if got := readRaw(t, c); got != welcome {
				t.Fatalf("got %s", got)
			}
			c.Send(`{"k":"v"}`)
			if got := readRaw(t, c); got != `{"type":"echo","data":{"k":"v"}}` {
				t.Fatalf("got %s", got)
			}
		})
	}
	for _, p := range []string{"/echox", "/echo/more"} {
		_, err := testutil.TryDial(t, testutil.URL(s, 0, p), nil)
		if err == nil || !strings.Contains(err.Error(), "HTTP 404") {
			t.Fatalf("%s: %v, want HTTP 404", p, err)
		}
	}
}

// FuzzEcho feeds arbitrary messages to a session: it must never panic, every
// reply must be a JSON object, and a valid JSON message must come back
// byte for byte inside {"type":"echo","data":...}.
func FuzzEcho(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `[]`, `"x"`, `1e400`, `{`, ``, `nul`, `{"a":"\ud800"}`,
		strings.Repeat("[", 1500) + strings.Repeat("]", 1500), "\xff", `{"a":1,"a":2}`, " 0 "} {
		f.Add([]byte(s), false)
	}
	f.Add([]byte(`{"a":1}`), true)
	d := echo.New()
	f.Fuzz(func(t *testing.T, data []byte, binary bool) {
		c := dialecttest.New(dialect.Request{Path: "/echo"})
		sess := d.Open(c)
		kind := codec.KindText
		if binary {
			kind = codec.KindBinary
		}
		sess.OnMessage(kind, data)
		sess.OnClose()
		frames := c.Frames()
		if len(frames) != 2 || string(frames[0]) != welcome {
			t.Fatalf("frames %q", frames)
		}
		reply := frames[1]
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(reply))
		dec.UseNumber()
		if err := dec.Decode(&m); err != nil || dec.More() || !json.Valid(reply) {
			t.Fatalf("reply %q is not a JSON object: %v", reply, err)
		}
		switch {
		case binary:
			if m["type"] != "error" {
				t.Fatalf("binary: %s", reply)
			}
		case utf8.Valid(data) && json.Valid(data) && !deep(data):
			if want := `{"type":"echo","data":` + string(bytes.TrimSpace(data)) + `}`; string(reply) != want {
				t.Fatalf("valid JSON %q: reply %s", data, reply)
			}
		case !json.Valid(data):
			if string(reply) != `{"type":"error","message":"Invalid JSON"}` {
				t.Fatalf("invalid JSON %q: reply %s", data, reply)
			}
		}
	})
}

// deep reports nesting beyond what every JSON parser accepts (parsers
// differ there; the property is only checked below it).
func deep(b []byte) bool {
	n, deepest := 0, 0
	for _, c := range b {
		switch c {
		case '[', '{':
			n++
			deepest = max(deepest, n)
		case ']', '}':
			n--
		}
	}
	return deepest > 1000
}
