package teams_test

import (
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"

	"partyline/backplane"
	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/dialecttest"
	"partyline/dialect/teams"
	"partyline/internal/testutil"
	"partyline/routing"
	"partyline/server"
)

const notRegistered = "Team not registered. Send registration message first"

type env struct {
	t *testing.T
	s *server.Server
}

func start(t *testing.T, mutate func(*server.Config)) *env {
	return &env{t: t, s: testutil.Start(t, mutate)}
}

func (e *env) dial() *testutil.Client { return testutil.Dial(e.t, testutil.URL(e.s, 0, "/teams")) }

// register dials and registers as team.
func (e *env) register(team int) *testutil.Client {
	e.t.Helper()
	c := e.dial()
	c.Send(map[string]any{"team": team})
	expect(e.t, c, "status", "Team "+itoa(team)+" registered successfully")
	return c
}

// expect reads the next message and checks it is exactly {"type":typ,"data":data}.
func expect(t *testing.T, c *testutil.Client, typ, data string) {
	t.Helper()
	m := c.Read()
	if len(m) != 2 || m.Str("type") != typ || m.Str("data") != data {
		t.Fatalf("got %v, want {type:%s data:%q}", m, typ, data)
	}
}

func itoa(n int) string { return string(codec.AppendInt(nil, int64(n))) }

func TestRegister(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	const invalid = "Invalid team ID: must be an integer from 1 to 2"
	cases := []struct {
		name string
		msg  string
		typ  string
		data string
	}{
		{"team 1", `{"team":1}`, "status", "Team 1 registered successfully"},
		{"team 2", `{"team":2}`, "status", "Team 2 registered successfully"},
		{"extra fields ignored", `{"team":1,"name":"x"}`, "status", "Team 1 registered successfully"},
		{"team 0", `{"team":0}`, "error", invalid},
		{"team 3 of 2", `{"team":3}`, "error", invalid},
		{"negative", `{"team":-1}`, "error", invalid},
		{"string", `{"team":"1"}`, "error", invalid},
		{"fraction", `{"team":1.5}`, "error", invalid},
		{"exponent", `{"team":1e0}`, "error", invalid},
		{"bool", `{"team":true}`, "error", invalid},
		{"object", `{"team":{}}`, "error", invalid},
		{"null team is no registration", `{"team":null}`, "error", notRegistered},
		{"empty object", `{}`, "error", notRegistered},
		{"message before registration", `{"from":1,"to":2,"message":"hi"}`, "error", notRegistered},
		{"invalid JSON", `{"team":`, "error", "Invalid JSON"},
		{"not JSON at all", `team 1`, "error", "Invalid JSON"},
		{"array", `[{"team":1}]`, "error", "Invalid message: expected a JSON object"},
		{"number", `1`, "error", "Invalid message: expected a JSON object"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := e.dial()
			c.Send(tc.msg)
			expect(t, c, tc.typ, tc.data)
			team := "2"
			if tc.typ == "error" { // still unregistered, still open: register now
				c.Send(`{"team":2}`)
				expect(t, c, "status", "Team 2 registered successfully")
			} else {
				team = strings.TrimSuffix(strings.TrimPrefix(tc.data, "Team "), " registered successfully")
			}
			c.Send(`{"team":1}`)
			expect(t, c, "error", "Team already registered as Team "+team)
		})
	}
}

func TestConfiguredTeamCount(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.Teams.Teams = 5 })
	c := e.register(5)
	c.Send(`{"team":6}`)
	expect(t, c, "error", "Team already registered as Team 5")
	d := e.dial()
	d.Send(`{"team":6}`)
	expect(t, d, "error", "Invalid team ID: must be an integer from 1 to 5")
	c.Send(`{"from":5,"to":6,"message":"x"}`)
	expect(t, c, "error", "Invalid target team: to must be an integer from 1 to 5")
	c.Send(`{"from":5,"to":4,"message":"x"}`)
	expect(t, c, "error", "Team 4 is not connected")
	d.Send(`{"team":4}`)
	expect(t, d, "status", "Team 4 registered successfully")
	expect(t, c, "status", "Team 4 connected")
	c.Send(`{"from":5,"to":4,"message":"x"}`)
	expect(t, c, "status", "Message delivered to Team 4")
	if m := d.Expect("message"); m["from"] != float64(5) || m["to"] != float64(4) || m.Str("message") != "x" {
		t.Fatalf("delivered %v", m)
	}
}

// TestValidationOrder checks each error in the spec's order: a message
// with several problems gets the first one's error.
func TestValidationOrder(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	a := e.register(1)
	b := e.register(2)
	expect(t, a, "status", "Team 2 connected")
	const (
		missing  = "Missing required fields: from, to and message (a string) are required"
		mismatch = "Team ID mismatch: this connection is registered as Team 1"
		badTo    = "Invalid target team: to must be an integer from 1 to 2"
	)
	cases := []struct {
		name, msg, data string
	}{
		{"no fields", `{}`, missing},
		{"no message", `{"from":1,"to":2}`, missing},
		{"no to", `{"from":1,"message":"hi"}`, missing},
		{"no from", `{"to":2,"message":"hi"}`, missing},
		{"null from", `{"from":null,"to":2,"message":"hi"}`, missing},
		{"message not a string", `{"from":1,"to":2,"message":5}`, missing},
		{"message object", `{"from":1,"to":2,"message":{"a":1}}`, missing},
		{"missing beats mismatch", `{"from":2,"to":9}`, missing},
		{"from other team", `{"from":2,"to":2,"message":"hi"}`, mismatch},
		{"from as string", `{"from":"1","to":2,"message":"hi"}`, mismatch},
		{"from out of range", `{"from":7,"to":2,"message":"hi"}`, mismatch},
		{"mismatch beats bad to", `{"from":2,"to":9,"message":"hi"}`, mismatch},
		{"to out of range", `{"from":1,"to":3,"message":"hi"}`, badTo},
		{"to zero", `{"from":1,"to":0,"message":"hi"}`, badTo},
		{"to as string", `{"from":1,"to":"2","message":"hi"}`, badTo},
		{"bad to beats not connected", `{"from":1,"to":3,"message":"hi"}`, badTo},
		{"own team without another connection", `{"from":1,"to":1,"message":"hi"}`, "Team 1 is not connected"},
		{"invalid JSON", `{"from":1,`, "Invalid JSON"},
		{"array", `[]`, "Invalid message: expected a JSON object"},
		{"second registration", `{"team":2}`, "Team already registered as Team 1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a.Send(tc.msg)
			expect(t, a, "error", tc.data)
		})
	}
	// Nothing above reached team 2: its next message is this one.
	a.Send(`{"from":1,"to":2,"message":"after errors"}`)
	expect(t, a, "status", "Message delivered to Team 2")
	if m := b.Expect("message"); m.Str("message") != "after errors" {
		t.Fatalf("team 2 got %v", m)
	}
	// Binary frames are an error reply too.
	a.Conn.WriteMessage(websocket.BinaryMessage, []byte(`{"from":1,"to":2,"message":"x"}`))
	if m := a.Expect("error"); !strings.Contains(m.Str("data"), "binary") {
		t.Fatalf("binary: %v", m)
	}
}

func TestDelivery(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	a1 := e.register(1)
	a1.Send(`{"from":1,"to":2,"message":"anyone?"}`)
	expect(t, a1, "error", "Team 2 is not connected")

	b1 := e.register(2)
	expect(t, a1, "status", "Team 2 connected")
	b2 := e.register(2) // a second connection: no new notice
	a2 := e.register(1) // likewise for team 2
	unregistered := e.dial()

	msg := "hi \"team\" 2 ✓\n"
	a1.Send(map[string]any{"from": 1, "to": 2, "message": msg})
	expect(t, a1, "status", "Message delivered to Team 2")
	for _, b := range []*testutil.Client{b1, b2} {
		m := b.Read()
		if len(m) != 4 || m.Str("type") != "message" || m["from"] != float64(1) || m["to"] != float64(2) || m.Str("message") != msg {
			t.Fatalf("team 2 got %v", m)
		}
	}
	// To its own team: the other connections of team 1, never the sender.
	a1.Send(`{"from":1,"to":1,"message":"team talk"}`)
	expect(t, a1, "status", "Message delivered to Team 1")
	if m := a2.Expect("message"); m.Str("message") != "team talk" || m["to"] != float64(1) {
		t.Fatalf("a2 got %v", m)
	}
	// The reverse direction; the first thing a2 sees from team 2.
	b2.Send(`{"from":2,"to":1,"message":"back"}`)
	expect(t, b2, "status", "Message delivered to Team 1")
	for _, a := range []*testutil.Client{a1, a2} {
		if m := a.Expect("message"); m.Str("message") != "back" || m["from"] != float64(2) {
			t.Fatalf("team 1 got %v", m)
		}
	}
	// The unregistered connection saw none of it: its first message is its
	// own error.
	unregistered.Send(`{"from":1,"to":2,"message":"x"}`)
	expect(t, unregistered, "error", notRegistered)
}

func TestConnectedDisconnectedNotices(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.Teams.Teams = 3 })
	a := e.register(1)
	c3 := e.register(3)
	expect(t, a, "status", "Team 3 connected")
	b1 := e.register(2)
	expect(t, a, "status", "Team 2 connected")
	expect(t, c3, "status", "Team 2 connected")
	b2 := e.register(2) // not the first: no notice
	b1.Conn.Close()     // not the last: no notice
	b2.Send(`{"from":2,"to":1,"message":"still here"}`)
	expect(t, b2, "status", "Message delivered to Team 1")
	if m := a.Expect("message"); m.Str("message") != "still here" {
		t.Fatalf("a got %v, want the message (no notice in between)", m)
	}
	b2.Conn.Close() // the last of team 2
	expect(t, a, "status", "Team 2 disconnected")
	expect(t, c3, "status", "Team 2 disconnected")
	a.Send(`{"from":1,"to":2,"message":"gone?"}`)
	expect(t, a, "error", "Team 2 is not connected")
	// A team that comes back is announced again.
	e.register(2)
	expect(t, a, "status", "Team 2 connected")
	// A graceful close counts too.
	c3.Conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""))
	expect(t, a, "status", "Team 3 disconnected")
}

// TestConcurrentRegistration: many connections of one team register and
// leave at once from different event loops; the other team sees exactly
// one "connected" and one "disconnected".
func TestConcurrentRegistration(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) { c.EventLoops = 4 })
	a := e.register(1)
	const n = 16
	cs := make([]*testutil.Client, n)
	for i := range cs {
		cs[i] = e.dial()
	}
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() { c.Send(`{"team":2}`) })
	}
	wg.Wait()
	for _, c := range cs {
		expect(t, c, "status", "Team 2 registered successfully")
	}
	expect(t, a, "status", "Team 2 connected")
	for _, c := range cs {
		wg.Go(func() { c.Conn.Close() })
	}
	wg.Wait()
	expect(t, a, "status", "Team 2 disconnected")
	a.Send(`{"from":1,"to":1,"message":"x"}`)
	expect(t, a, "error", "Team 1 is not connected") // no third notice queued before it
}

// TestRegistrationCancelled: a connection that closes before its
// registration is answered (the reply waits for the backplane) still
// leaves the other teams a consistent story: "connected", then
// "disconnected", and no team behind.
func TestRegistrationCancelled(t *testing.T) {
	d := teams.New(teams.Config{Teams: 2})
	bp := deferred{Local: backplane.NewLocal("", nil, 0), held: new([]func())}
	d.UseBackplane(bp)
	a, sa := open(d, `{"team":1}`)
	bp.run()
	a.RunTasks()
	b, sb := open(d, `{"team":2}`)
	sb.OnClose() // before its follow-up ran: the server drops it
	bp.run()     // the subscription is confirmed after the close
	var got []string
	for _, p := range a.Frames() {
		got = append(got, string(p))
	}
	want := []string{`{"type":"status","data":"Team 1 registered successfully"}`,
		`{"type":"status","data":"Team 2 connected"}`, `{"type":"status","data":"Team 2 disconnected"}`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("team 1 got %q, want %q", got, want)
	}
	if fs := b.Frames(); len(fs) != 0 {
		t.Fatalf("the closed connection got %q", fs)
	}
	sa.OnClose()
	if n := d.Rooms(); n != 0 {
		t.Fatalf("%d teams left", n)
	}
}

func TestBoundListener(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) {
		c.Listeners = append(c.Listeners, server.Listener{Addr: "127.0.0.1:0", Dialect: "teams"})
	})
	a := testutil.Dial(t, testutil.URL(e.s, 1, "/"))
	a.Send(`{"team":1}`)
	expect(t, a, "status", "Team 1 registered successfully")
	b := testutil.Dial(t, testutil.URL(e.s, 1, "/any/path?x=1"))
	b.Send(`{"team":2}`)
	expect(t, b, "status", "Team 2 registered successfully")
	expect(t, a, "status", "Team 2 connected")
	// Prefix routing on the other listener reaches the same teams.
	c := e.register(2)
	a.Send(`{"from":1,"to":2,"message":"both"}`)
	expect(t, a, "status", "Message delivered to Team 2")
	for _, x := range []*testutil.Client{b, c} {
		if m := x.Expect("message"); m.Str("message") != "both" {
			t.Fatalf("got %v", m)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in, want int
		ok       bool
	}{{0, 2, true}, {1, 1, true}, {7, 7, true}, {-1, 0, false}, {teams.MaxTeams + 1, 0, false}} {
		c := teams.Config{Teams: tc.in}
		err := c.Validate()
		if (err == nil) != tc.ok || (tc.ok && c.Teams != tc.want) {
			t.Errorf("Validate(%d): teams %d, err %v", tc.in, c.Teams, err)
		}
	}
}

// FuzzTeams feeds a sequence of messages (split at 0x00) to a session while
// a second session is registered as team 2. It must never panic; every reply
// must be a JSON object of a known shape; closing both leaves no team.
func FuzzTeams(f *testing.F) {
	for _, s := range []string{
		"{\"team\":1}\x00{\"from\":1,\"to\":2,\"message\":\"hi\"}",
		"{\"from\":1,\"to\":2,\"message\":\"hi\"}",
		"{\"team\":2}\x00{\"from\":2,\"to\":2,\"message\":\"\\u00e9\\\"\"}\x00{\"team\":1}",
		"{\"team\":1}\x00{}\x00{\"from\":2,\"to\":1,\"message\":\"x\"}\x00{\"from\":1,\"to\":9,\"message\":\"x\"}",
		"{\"team\":1}\x00{\"from\":1,\"to\":1,\"message\":\"x\"}",
		"{\"team\":99999999999}", "{\"team\":-0}", "[", "null", "{\"team\":1,\"team\":2}", "\xff\xfe",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := teams.New(teams.Config{Teams: 2})
		d.UseBackplane(inline{backplane.NewLocal("", nil, 0)})
		peer, ps := open(d, `{"team":2}`)
		peer.RunTasks()
		c, s := open(d)
		for _, msg := range dialecttest.Split(data, 16) {
			s.OnMessage(codec.KindText, msg)
			c.RunTasks() // the follow-up of a registration or a send
		}
		s.OnClose()
		ps.OnClose()
		for _, conn := range []*dialecttest.Conn{c, peer} {
			for _, p := range conn.Frames() {
				checkReply(t, p)
			}
		}
		if n := d.Rooms(); n != 0 {
			t.Fatalf("%d teams left after every connection closed", n)
		}
	})
}

// open opens a session of d on a fake connection and sends it msgs.
func open(d *teams.Dialect, msgs ...string) (*dialecttest.Conn, dialect.Session) {
	c := dialecttest.New(dialect.Request{Path: "/teams"})
	s := d.Open(c)
	for _, m := range msgs {
		s.OnMessage(codec.KindText, []byte(m))
	}
	return c, s
}

// inline is a single-node backplane whose workers run on the caller's
// goroutine: a session driven by hand has queued its follow-up (Conn.Do)
// when the call returns.
type inline struct{ *backplane.Local }

func (inline) Go(fn func()) bool { fn(); return true }

// deferred is a single-node backplane whose Bus.Ensure answers only when
// the test calls run, as a cluster's may answer after the connection
// closed: a registration stays in flight meanwhile.
type deferred struct {
	*backplane.Local
	held *[]func()
}

func (d deferred) Bus(ns string, hub *routing.Hub) backplane.Bus {
	return deferredBus{d.Local.Bus(ns, hub), d.held}
}

func (d deferred) run() {
	h := *d.held
	*d.held = nil
	for _, f := range h {
		f()
	}
}

type deferredBus struct {
	backplane.Bus
	held *[]func()
}

func (b deferredBus) Ensure(name string, done func(release func())) {
	*b.held = append(*b.held, func() { b.Bus.Ensure(name, done) })
}

func checkReply(t *testing.T, p []byte) {
	t.Helper()
	m := dialecttest.Reply(t, p)
	switch m["type"] {
	case "status", "error":
		if _, ok := m["data"].(string); !ok || len(m) != 2 {
			t.Fatalf("reply %s", p)
		}
	case "message":
		if _, ok := m["message"].(string); !ok || len(m) != 4 {
			t.Fatalf("reply %s", p)
		}
	default:
		t.Fatalf("reply of unknown type: %s", p)
	}
}
