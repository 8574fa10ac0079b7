package party_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/internal/testutil"
	"partyline/server"
)

// env is one running server with the party dialect at /party.
type env struct {
	t   *testing.T
	srv *server.Server
	url string
}

func start(t *testing.T, mutate func(*server.Config)) *env {
	t.Helper()
	s := testutil.Start(t, mutate)
	return &env{t: t, srv: s, url: testutil.URL(s, 0, "/party")}
}

// with returns e for use by t (a subtest): clients it dials fail t.
func (e *env) with(t *testing.T) *env {
	c := *e
	c.t = t
	return &c
}

func (e *env) dial() *testutil.Client {
	e.t.Helper()
	return testutil.Dial(e.t, e.url)
}

// create dials a new client that creates a room; it returns the client,
// the room code and the token.
func (e *env) create(id string, extra map[string]any) (*testutil.Client, string, string) {
	e.t.Helper()
	c := e.dial()
	req := map[string]any{"type": "create", "clientId": id}
	for k, v := range extra {
		req[k] = v
	}
	c.Send(req)
	m := c.Expect("created")
	code, tok := m.Str("room"), m.Str("token")
	if code == "" || tok == "" {
		e.t.Fatalf("created without room or token: %v", m)
	}
	return c, code, tok
}

// join dials a new client that joins room code as id and returns it with
// its "joined" reply. Every member in others must receive peer_joined.
func (e *env) join(code, id string, others ...*testutil.Client) (*testutil.Client, testutil.Msg) {
	e.t.Helper()
	c := e.dial()
	c.Send(map[string]any{"type": "join", "clientId": id, "room": code})
	m := c.Expect("joined")
	for _, o := range others {
		if p := o.Expect("peer_joined"); p.Str("clientId") != id {
			e.t.Fatalf("peer_joined %v, want clientId %q", p, id)
		}
	}
	return c, m
}

// expectError reads the next message and checks it is an error whose text
// contains every one of want (case-insensitive).
func expectError(t *testing.T, c *testutil.Client, want ...string) string {
	t.Helper()
	m := c.Expect("error")
	msg := m.Str("message")
	for _, w := range want {
		if !strings.Contains(strings.ToLower(msg), strings.ToLower(w)) {
			t.Fatalf("error %q does not mention %q", msg, w)
		}
	}
	return msg
}

// expectExact reads the next message and checks it is an error with
// exactly the text want (Party-Sockets' texts, which clients compare).
func expectExact(t *testing.T, c *testutil.Client, want string) {
	t.Helper()
	if got := c.Expect("error").Str("message"); got != want {
		t.Fatalf("error %q, want exactly %q", got, want)
	}
}

// clients returns the "clients" field of a joined message.
func clients(t *testing.T, m testutil.Msg) []string {
	t.Helper()
	raw, ok := m["clients"].([]any)
	if !ok {
		t.Fatalf("joined without clients array: %v", m)
	}
	out := make([]string, len(raw))
	for i, v := range raw {
		s, ok := v.(string)
		if !ok {
			t.Fatalf("clients[%d] is %T, want string", i, v)
		}
		out[i] = s
	}
	return out
}

// readRaw returns the next text message undecoded.
func readRaw(t *testing.T, c *testutil.Client) []byte {
	t.Helper()
	c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, b, err := c.Conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("message type %d, want text", typ)
	}
	return b
}

// roomInfo is GET /api/rooms/{code}.
type roomInfo struct {
	Room       string `json:"room"`
	Members    int    `json:"members"`
	MaxClients int    `json:"maxClients"`
	Created    string `json:"created"`
}

// getRoom fetches /api/rooms/{code}: the status and, on 200, the body.
func (e *env) getRoom(code string) (int, roomInfo) {
	e.t.Helper()
	resp, err := http.Get(testutil.HTTPURL(e.srv, "/api/rooms/"+code))
	if err != nil {
		e.t.Fatalf("GET room: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var ri roomInfo
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &ri); err != nil {
			e.t.Fatalf("room body %q: %v", body, err)
		}
	}
	return resp.StatusCode, ri
}

// eventually polls cond until it holds or 5 s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metric returns the value of the first sample of name whose labels contain
// every label in want (e.g. `dialect="party"`), reading /metrics.
func (e *env) metric(name string, want ...string) (float64, bool) {
	e.t.Helper()
	resp, err := http.Get(testutil.HTTPURL(e.srv, "/metrics"))
	if err != nil {
		e.t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range bytes.Split(body, []byte("\n")) {
		l := string(line)
		if !strings.HasPrefix(l, name+"{") && !strings.HasPrefix(l, name+" ") {
			continue
		}
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(l, w)
		}
		if !ok {
			continue
		}
		var v float64
		if err := json.Unmarshal([]byte(l[strings.LastIndexByte(l, ' ')+1:]), &v); err != nil {
			e.t.Fatalf("metric line %q: %v", l, err)
		}
		return v, true
	}
	return 0, false
}

// waitConnections waits until the server counts n open connections.
func (e *env) waitConnections(n int) {
	e.t.Helper()
	eventually(e.t, "partyline_connections to settle", func() bool {
		v, ok := e.metric("partyline_connections")
		return ok && int(v) == n
	})
}
