package channels_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/dialect/channels"
	"partyline/internal/testutil"
	"partyline/server"
)

// Short intervals so the timing rules run in milliseconds. The timeout is
// 20 heartbeats so that a test process stalled by the race detector does
// not miss it by accident.
const (
	beat    = 50 * time.Millisecond
	timeout = time.Second
	delay   = 150 * time.Millisecond
	wait    = 5 * time.Second // upper bound for any awaited condition
)

func start(t *testing.T, mutate func(*server.Config)) *server.Server {
	return testutil.Start(t, func(c *server.Config) {
		c.Channels = channels.Config{Heartbeat: beat, HeartbeatTimeout: timeout, AuthDelay: delay}
		c.EventLoops = 4
		if mutate != nil {
			mutate(c)
		}
	})
}

// client reads in the background: it answers heartbeats while answer is
// set and hands every other message to msgs.
type client struct {
	t      *testing.T
	ws     *websocket.Conn
	wmu    sync.Mutex // guards writes
	answer atomic.Bool
	beats  chan string // the "authenticated" value of each heartbeat
	msgs   chan testutil.Msg
	done   chan struct{} // closed when the socket is gone
}

func dial(t *testing.T, url string, answer bool) *client {
	t.Helper()
	c := &client{t: t, ws: testutil.Dial(t, url).Conn, beats: make(chan string, 4096),
		msgs: make(chan testutil.Msg, 1024), done: make(chan struct{})}
	c.answer.Store(answer)
	go c.pump()
	return c
}

func (c *client) pump() {
	defer close(c.done)
	for {
		_, b, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		var m testutil.Msg
		if err := json.Unmarshal(b, &m); err != nil {
			m = testutil.Msg{"type": "NOT JSON", "raw": string(b)}
		}
		if m.Str("type") != "heartbeat" {
			c.msgs <- m
			continue
		}
		if len(m) != 2 {
			m["type"] = "BAD HEARTBEAT"
			c.msgs <- m
		}
		select {
		case c.beats <- m.Str("authenticated"):
		default:
		}
		if c.answer.Load() {
			c.write([]byte(`{"type":"heartbeat"}`))
		}
	}
}

func (c *client) write(b []byte) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.ws.SetWriteDeadline(time.Now().Add(wait))
	_ = c.ws.WriteMessage(websocket.TextMessage, b)
}

func (c *client) send(v any) {
	b, ok := v.([]byte)
	if !ok {
		if s, isStr := v.(string); isStr {
			b = []byte(s)
		} else {
			b, _ = json.Marshal(v)
		}
	}
	c.write(b)
}

// next returns the next message that is not a heartbeat.
func (c *client) next() testutil.Msg {
	c.t.Helper()
	select {
	case m := <-c.msgs:
		return m
	case <-time.After(wait):
		c.t.Fatal("no message within 5s")
		return nil
	}
}

func (c *client) expect(want string) {
	c.t.Helper()
	m := c.next()
	var w testutil.Msg
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		c.t.Fatal(err)
	}
	if fmt.Sprint(m) != fmt.Sprint(w) {
		c.t.Fatalf("got %v, want %s", m, want)
	}
}

func (c *client) expectError(substr string) {
	c.t.Helper()
	m := c.next()
	if m.Str("type") != "error" || len(m) != 2 || !strings.Contains(m.Str("message"), substr) {
		c.t.Fatalf("got %v, want an error containing %q", m, substr)
	}
}

// identity claims name and returns the reply's success value.
func (c *client) identity(name any) string {
	c.t.Helper()
	c.send(map[string]any{"type": "identity", "user": name})
	m := c.next()
	if m.Str("type") != "identity" || len(m) != 2 {
		c.t.Fatalf("identity reply %v", m)
	}
	return m.Str("success")
}

// awaitBeat waits for a heartbeat whose authenticated value is want.
func (c *client) awaitBeat(want string) {
	c.t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case got := <-c.beats:
			if got == want {
				return
			}
			if got != "true" && got != "false" {
				c.t.Fatalf("heartbeat authenticated %q", got)
			}
		case <-deadline:
			c.t.Fatalf("no heartbeat with authenticated %q within 5s", want)
		}
	}
}

// drainBeats forgets the heartbeats received so far.
func (c *client) drainBeats() {
	for {
		select {
		case <-c.beats:
		default:
			return
		}
	}
}

// authenticate claims name and waits until heartbeats report it authenticated.
func (c *client) authenticate(name string) {
	c.t.Helper()
	if got := c.identity(name); got != "true" {
		c.t.Fatalf("identity %q: success %q", name, got)
	}
	c.drainBeats()
	c.awaitBeat("true")
}

func TestConnect(t *testing.T) {
	t.Parallel()
	s := start(t, func(c *server.Config) {
		c.Listeners = append(c.Listeners, server.Listener{Addr: "127.0.0.1:0", Dialect: "channels"})
	})
	long := strings.Repeat("x", 64)
	for _, tc := range []struct {
		name     string
		listener int
		path     string
		id       string
	}{
		{"prefix", 0, "/channels/fishing", "fishing"},
		{"prefix with query", 0, "/channels/fishing?user=1", "fishing"},
		{"url-decoded", 0, "/channels/deep%20sea%2Ffishing", "deep sea/fishing"},
		{"unicode", 0, "/channels/caf%C3%A9", "café"},
		{"further segments belong to the name", 0, "/channels/a/b", "a/b"},
		{"64 bytes", 0, "/channels/" + long, long},
		{"quote in name", 0, "/channels/say%22hi%22", `say"hi"`},
		{"bound listener (seed URL)", 1, "/fishing", "fishing"},
		{"bound listener with query", 1, "/fishing?x=1", "fishing"},
		{"bound listener decoded", 1, "/deep%20sea", "deep sea"},
		{"bound listener nested", 1, "/a/b", "a/b"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, testutil.URL(s, tc.listener, tc.path), false)
			m := c.next()
			if m.Str("type") != "connection" || m.Str("id") != tc.id || len(m) != 2 {
				t.Fatalf("got %v, want connection %q", m, tc.id)
			}
		})
	}
	for _, tc := range []struct {
		name     string
		listener int
		path     string
		status   string
	}{
		{"no name", 0, "/channels", "HTTP 400"},
		{"empty name", 0, "/channels/", "HTTP 400"},
		{"empty name with query", 0, "/channels/?x=1", "HTTP 400"},
		{"65 bytes", 0, "/channels/" + long + "y", "HTTP 400"},
		{"invalid UTF-8", 0, "/channels/%ff", "HTTP 400"},
		{"bound listener root", 1, "/", "HTTP 400"},
		{"bound listener root with query", 1, "/?x=1", "HTTP 400"},
		{"not a segment prefix", 0, "/channelsx/a", "HTTP 404"},
	} {
		t.Run("refused "+tc.name, func(t *testing.T) {
			_, err := testutil.TryDial(t, testutil.URL(s, tc.listener, tc.path), nil)
			if err == nil || !strings.Contains(err.Error(), tc.status) {
				t.Fatalf("dial %s: %v, want %s", tc.path, err, tc.status)
			}
		})
	}
}

func TestHeartbeat(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	c := dial(t, testutil.URL(s, 0, "/channels/beats"), false)
	c.next() // connection
	t0 := time.Now()
	for range 5 {
		c.awaitBeat("false")
	}
	// Five heartbeats 50ms apart take about 250ms; allow generous slack
	// for a loaded machine, but not a second-long default period.
	if el := time.Since(t0); el > 900*time.Millisecond {
		t.Fatalf("5 heartbeats took %v with a 50ms period", el)
	}
}

func TestHeartbeatDefaultPeriod(t *testing.T) {
	t.Parallel()
	s := testutil.Start(t, nil) // defaults: 1s
	c := dial(t, testutil.URL(s, 0, "/channels/slow"), false)
	c.next()
	t0 := time.Now()
	c.awaitBeat("false")
	c.awaitBeat("false")
	if el := time.Since(t0); el < 1500*time.Millisecond || el > 3*time.Second {
		t.Fatalf("2 heartbeats took %v with the default 1s period", el)
	}
}

func TestIdentityAndMessage(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	a := dial(t, testutil.URL(s, 0, "/channels/fishing"), true)
	b := dial(t, testutil.URL(s, 0, "/channels/fishing"), true)
	other := dial(t, testutil.URL(s, 0, "/channels/hiking"), true)
	for _, c := range []*client{a, b, other} {
		c.next()
	}
	if got := a.identity("fishing_beast_5000"); got != "true" {
		t.Fatalf("identity: %q", got)
	}
	// Reserved at once, not yet authenticated.
	a.send(`{"type":"message","text":"too early"}`)
	a.expect(`{"type":"error","message":"not authenticated"}`)
	a.drainBeats()
	a.awaitBeat("true")

	text := "I heard you have the best luck fishing in the morning \"🎣\"\n"
	before := time.Now().Unix()
	a.send(map[string]any{"type": "message", "text": text, "extra": "ignored"})
	for _, c := range []*client{a, b} { // sender included
		m := c.next()
		ts, ok := m["timestamp"].(float64)
		if m.Str("type") != "message" || m.Str("text") != text || m.Str("user") != "fishing_beast_5000" || len(m) != 4 || !ok {
			t.Fatalf("got %v", m)
		}
		if int64(ts) < before || int64(ts) > time.Now().Unix() || ts != float64(int64(ts)) {
			t.Fatalf("timestamp %v is not the current time in Unix seconds", ts)
		}
	}
	// Unauthenticated b may read but not post.
	b.send(`{"type":"message","text":"me too"}`)
	b.expect(`{"type":"error","message":"not authenticated"}`)
	// The other channel saw nothing: its next message is its own.
	other.send(`{"type":"message","text":"x"}`)
	other.expect(`{"type":"error","message":"not authenticated"}`)
}

func TestIdentityRules(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	a := dial(t, testutil.URL(s, 0, "/channels/names"), true)
	b := dial(t, testutil.URL(s, 0, "/channels/names"), true)
	elsewhere := dial(t, testutil.URL(s, 0, "/channels/other"), true)
	for _, c := range []*client{a, b, elsewhere} {
		c.next()
	}
	steps := []struct {
		name string
		c    *client
		user any
		want string
	}{
		{"first claim", a, "bob", "true"},
		{"taken", b, "bob", "false"},
		{"same name in another channel", elsewhere, "bob", "true"},
		{"own name again", a, "bob", "true"},
		{"empty", b, "", "false"},
		{"33 bytes", b, strings.Repeat("n", 33), "false"},
		{"number", b, 5, "false"},
		{"null", b, nil, "false"},
		{"object", b, map[string]any{"n": "bob"}, "false"},
		{"case differs: another name", b, "Bob", "true"},
		{"a new name replaces the old", a, "alice", "true"},
		{"the old name is free again", b, "bob", "true"},
		{"and Bob with it", a, "Bob", "true"},
		{"32 bytes", elsewhere, strings.Repeat("n", 32), "true"},
		{"unicode", elsewhere, "pêcheur🐟", "true"},
		{"alice was released by a", b, "alice", "true"},
	}
	for _, st := range steps {
		if got := st.c.identity(st.user); got != st.want {
			t.Fatalf("%s: identity %v: success %q, want %q", st.name, st.user, got, st.want)
		}
	}
	// A missing user field is an invalid name too.
	a.send(`{"type":"identity"}`)
	a.expect(`{"type":"identity","success":"false"}`)
}

func TestNewIdentityRestartsAuthentication(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	a := dial(t, testutil.URL(s, 0, "/channels/rename"), true)
	a.next()
	a.authenticate("bob")
	if got := a.identity("rob"); got != "true" {
		t.Fatal(got)
	}
	a.send(`{"type":"message","text":"who am i"}`)
	a.expect(`{"type":"error","message":"not authenticated"}`)
	a.drainBeats()
	a.awaitBeat("true")
	a.send(`{"type":"message","text":"who am i"}`)
	if m := a.next(); m.Str("user") != "rob" {
		t.Fatalf("got %v", m)
	}
	// A failed claim keeps the current identity.
	b := dial(t, testutil.URL(s, 0, "/channels/rename"), true)
	b.next()
	b.authenticate("carol")
	if got := a.identity("carol"); got != "false" {
		t.Fatal(got)
	}
	a.send(`{"type":"message","text":"still rob"}`)
	for _, c := range []*client{a, b} {
		if m := c.next(); m.Str("user") != "rob" || m.Str("text") != "still rob" {
			t.Fatalf("got %v", m)
		}
	}
}

func TestHeartbeatTimeoutLosesIdentity(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	a := dial(t, testutil.URL(s, 0, "/channels/lazy"), true)
	b := dial(t, testutil.URL(s, 0, "/channels/lazy"), true)
	a.next()
	b.next()
	a.authenticate("bob")
	a.answer.Store(false) // stop answering
	stopped := time.Now()
	a.drainBeats()
	a.awaitBeat("false")
	if el := time.Since(stopped); el < timeout-2*beat {
		t.Fatalf("identity lost after %v, before the %v timeout", el, timeout)
	}
	// Lost identity: cannot post, and the name is free.
	a.send(`{"type":"message","text":"x"}`)
	a.expect(`{"type":"error","message":"not authenticated"}`)
	if got := b.identity("bob"); got != "true" {
		t.Fatalf("name not released: %q", got)
	}
	// The socket stayed open: answering again, a can take a new name.
	a.answer.Store(true)
	a.authenticate("bobby")
	a.send(`{"type":"message","text":"back"}`)
	for _, c := range []*client{a, b} {
		if m := c.next(); m.Str("user") != "bobby" {
			t.Fatalf("got %v", m)
		}
	}
}

func TestSilentClientNeverAuthenticated(t *testing.T) {
	t.Parallel()
	// The timeout is shorter than the delay: a client that never answers
	// loses its name before it could be authenticated.
	s := start(t, func(c *server.Config) {
		c.Channels.HeartbeatTimeout = 200 * time.Millisecond
		c.Channels.AuthDelay = 400 * time.Millisecond
	})
	a := dial(t, testutil.URL(s, 0, "/channels/silent"), false)
	b := dial(t, testutil.URL(s, 0, "/channels/silent"), true)
	a.next()
	b.next()
	if got := a.identity("ghost"); got != "true" {
		t.Fatal(got)
	}
	claimed := time.Now()
	// Until the name is released b cannot have it; after it is, b can.
	for b.identity("ghost") != "true" {
		if time.Since(claimed) > wait {
			t.Fatal("the silent client's name was never released")
		}
		time.Sleep(beat)
	}
	if el := time.Since(claimed); el < 150*time.Millisecond {
		t.Fatalf("name released after %v, before the 200ms timeout", el)
	}
	// It never became authenticated on the way.
	for {
		select {
		case v := <-a.beats:
			if v != "false" {
				t.Fatalf("silent client heartbeat authenticated %q", v)
			}
			continue
		default:
		}
		break
	}
	a.send(`{"type":"message","text":"x"}`)
	a.expect(`{"type":"error","message":"not authenticated"}`)
}

func TestAnsweringKeepsIdentity(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	a := dial(t, testutil.URL(s, 0, "/channels/keep"), true)
	b := dial(t, testutil.URL(s, 0, "/channels/keep"), true)
	a.next()
	b.next()
	a.authenticate("bob")
	a.drainBeats()
	// Two timeouts' worth of heartbeats, every one answered: each must
	// still say authenticated.
	for i := range int(2 * timeout / beat) {
		select {
		case v := <-a.beats:
			if v != "true" {
				t.Fatalf("heartbeat %d says authenticated %q: an answering client lost its name", i, v)
			}
		case <-time.After(wait):
			t.Fatalf("no heartbeat %d", i)
		}
	}
	if got := b.identity("bob"); got != "false" {
		t.Fatalf("an answering client lost its name: %q", got)
	}
	a.drainBeats()
	a.awaitBeat("true")
	a.send(`{"type":"message","text":"here"}`)
	if m := b.next(); m.Str("user") != "bob" {
		t.Fatalf("got %v", m)
	}
}

func TestNameReleasedOnDisconnect(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	a := dial(t, testutil.URL(s, 0, "/channels/leave"), true)
	b := dial(t, testutil.URL(s, 0, "/channels/leave"), true)
	a.next()
	b.next()
	if a.identity("bob") != "true" || b.identity("bob") != "false" {
		t.Fatal("setup")
	}
	a.ws.Close()
	deadline := time.Now().Add(wait)
	for b.identity("bob") != "true" {
		if time.Now().After(deadline) {
			t.Fatal("name not released after disconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	a := dial(t, testutil.URL(s, 0, "/channels/errors"), true)
	a.next()
	a.authenticate("bob")
	for _, tc := range []struct{ name, msg, substr string }{
		{"invalid JSON", `{"type":`, "invalid JSON"},
		{"not JSON", `hello`, "invalid JSON"},
		{"array", `[{"type":"message"}]`, "JSON object"},
		{"string", `"message"`, "JSON object"},
		{"no type", `{"text":"x"}`, "type"},
		{"type not a string", `{"type":1}`, "type"},
		{"unknown type", `{"type":"shout","text":"x"}`, "unknown type: shout"},
		{"text not a string", `{"type":"message","text":5}`, "text"},
		{"missing text", `{"type":"message"}`, "text"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a.send(tc.msg)
			a.expectError(tc.substr)
		})
	}
	a.wmu.Lock()
	a.ws.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"message","text":"x"}`))
	a.wmu.Unlock()
	a.expectError("binary")
	// Still open and still bob.
	a.send(`{"type":"message","text":"fine"}`)
	if m := a.next(); m.Str("user") != "bob" || m.Str("text") != "fine" {
		t.Fatalf("got %v", m)
	}
}

// TestConcurrentClaims: connections on different event loops claim one
// name at the same moment; exactly one succeeds.
func TestConcurrentClaims(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	for round := range 5 {
		const n = 12
		path := "/channels/race" + strconv.Itoa(round)
		cs := make([]*client, n)
		for i := range cs {
			cs[i] = dial(t, testutil.URL(s, 0, path), true)
			cs[i].next()
		}
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Go(func() { c.send(`{"type":"identity","user":"winner"}`) })
		}
		wg.Wait()
		wins := 0
		for _, c := range cs {
			m := c.next()
			if m.Str("type") != "identity" {
				t.Fatalf("got %v", m)
			}
			if m.Str("success") == "true" {
				wins++
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d connections got the same name", round, wins)
		}
		for _, c := range cs {
			c.ws.Close()
		}
	}
}

var roomsRe = regexp.MustCompile(`partyline_rooms\{dialect="channels",node="[^"]*"\} (\d+)`)

func channelsGauge(t *testing.T, s *server.Server) int {
	t.Helper()
	resp, err := http.Get(testutil.HTTPURL(s, "/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := roomsRe.FindSubmatch(b)
	if m == nil {
		t.Fatalf("no channels rooms gauge in /metrics")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func TestEmptyChannelDeleted(t *testing.T) {
	t.Parallel()
	s := start(t, nil)
	a := dial(t, testutil.URL(s, 0, "/channels/one"), true)
	b := dial(t, testutil.URL(s, 0, "/channels/one"), true)
	c := dial(t, testutil.URL(s, 0, "/channels/two"), true)
	for _, x := range []*client{a, b, c} {
		x.next()
	}
	if n := channelsGauge(t, s); n != 2 {
		t.Fatalf("%d channels, want 2", n)
	}
	a.authenticate("bob")
	a.ws.Close()
	c.ws.Close()
	awaitGauge(t, s, 1)
	b.ws.Close()
	awaitGauge(t, s, 0)
	// A channel created again starts empty: bob is free.
	d := dial(t, testutil.URL(s, 0, "/channels/one"), true)
	d.next()
	if got := d.identity("bob"); got != "true" {
		t.Fatalf("identity in a re-created channel: %q", got)
	}
}

func awaitGauge(t *testing.T, s *server.Server, want int) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for channelsGauge(t, s) != want {
		if time.Now().After(deadline) {
			t.Fatalf("channels gauge %d, want %d", channelsGauge(t, s), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestConfigValidate(t *testing.T) {
	t.Parallel()
	c := channels.Config{}
	d := channels.Defaults()
	if err := c.Validate(); err != nil || c.Heartbeat != d.Heartbeat || c.HeartbeatTimeout != d.HeartbeatTimeout || c.AuthDelay != d.AuthDelay {
		t.Fatalf("zero config: %+v, %v", c, err)
	}
	if d := channels.Defaults(); d.Heartbeat != time.Second || d.HeartbeatTimeout != 5*time.Second || d.AuthDelay != 5*time.Second {
		t.Fatalf("defaults %+v", d)
	}
	for _, bad := range []channels.Config{{Heartbeat: -1}, {HeartbeatTimeout: -time.Second}, {AuthDelay: -1}} {
		if err := bad.Validate(); err == nil {
			t.Errorf("Validate(%+v) accepted a negative duration", bad)
		}
	}
}
