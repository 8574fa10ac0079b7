package rooms_test

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/dialecttest"
	"partyline/dialect/rooms"
	"partyline/internal/testutil"
	"partyline/server"
)

type env struct {
	t *testing.T
	s *server.Server
}

func start(t *testing.T, mutate func(*server.Config)) *env {
	return &env{t: t, s: testutil.Start(t, func(c *server.Config) {
		c.EventLoops = 4
		if mutate != nil {
			mutate(c)
		}
	})}
}

// dial connects to /rooms and returns the client and its clientId.
func (e *env) dial() (*testutil.Client, string) {
	e.t.Helper()
	c := testutil.Dial(e.t, testutil.URL(e.s, 0, "/rooms"))
	m := c.Expect("connected")
	if len(m) != 2 || m.Str("clientId") == "" {
		e.t.Fatalf("connected %v", m)
	}
	return c, m.Str("clientId")
}

// member dials and joins room as user.
func (e *env) member(room, user string) *testutil.Client {
	e.t.Helper()
	c, _ := e.dial()
	join(e.t, c, room, user)
	return c
}

func join(t *testing.T, c *testutil.Client, room, user string) {
	t.Helper()
	c.Send(map[string]any{"type": "join", "room": room, "username": user})
	expectMsg(t, c, testutil.Msg{"type": "joined", "room": room})
}

func expectMsg(t *testing.T, c *testutil.Client, want testutil.Msg) {
	t.Helper()
	got := c.Read()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func expectError(t *testing.T, c *testutil.Client, msg string) {
	t.Helper()
	expectMsg(t, c, testutil.Msg{"type": "error", "message": msg})
}

func userMsg(typ, room, user string, count int) testutil.Msg {
	return testutil.Msg{"type": typ, "room": room, "user": user, "userCount": float64(count)}
}

func TestClientIDs(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	seen := map[string]bool{}
	re := regexp.MustCompile(`^[0-9a-z]{9,}$`)
	for range 50 {
		_, id := e.dial()
		if !re.MatchString(id) {
			t.Fatalf("clientId %q", id)
		}
		if seen[id] {
			t.Fatalf("clientId %q issued twice", id)
		}
		seen[id] = true
	}
}

func TestJoinAndLeave(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	a := e.member("lobby", "alice")
	b, _ := e.dial()
	join(t, b, "lobby", "bob")
	expectMsg(t, a, userMsg("userJoined", "lobby", "bob", 2))
	c := e.member("lobby", "carol")
	for _, x := range []*testutil.Client{a, b} {
		expectMsg(t, x, userMsg("userJoined", "lobby", "carol", 3))
	}
	// Joining again changes nothing and tells nobody.
	join(t, c, "lobby", "carol")
	b.Send(`{"type":"leave","room":"lobby"}`)
	for _, x := range []*testutil.Client{a, c} {
		expectMsg(t, x, userMsg("userLeft", "lobby", "bob", 2))
	}
	// b is out: it may not post, and leaving twice is an error.
	b.Send(`{"type":"message","room":"lobby","content":"hi"}`)
	expectError(t, b, "Not a member of room lobby: join it first")
	b.Send(`{"type":"leave","room":"lobby"}`)
	expectError(t, b, "Not a member of room lobby: join it first")
	// It can come back (as someone else, even).
	join(t, b, "lobby", "bobby")
	for _, x := range []*testutil.Client{a, c} {
		expectMsg(t, x, userMsg("userJoined", "lobby", "bobby", 3))
	}
}

func TestMessage(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	a := e.member("r", "alice")
	b := e.member("r", "bob")
	expectMsg(t, a, userMsg("userJoined", "r", "bob", 2))
	outsider := e.member("elsewhere", "eve")
	for _, content := range []string{`"hello \"world\" ✓"`, `{"text":"hi","n":[1,2]}`, `42`, `null`, `false`} {
		t.Run(content, func(t *testing.T) {
			before := time.Now().UnixMilli()
			a.Send(`{"type":"message","room":"r","content":` + content + `,"extra":1}`)
			for _, x := range []*testutil.Client{a, b} { // sender included
				m := x.Read()
				ts, ok := m["timestamp"].(float64)
				if !ok || int64(ts) < before || int64(ts) > time.Now().UnixMilli() {
					t.Fatalf("timestamp in %v is not the current time in milliseconds", m)
				}
				var want any
				json.Unmarshal([]byte(content), &want)
				delete(m, "timestamp")
				if !reflect.DeepEqual(m, testutil.Msg{"type": "message", "room": "r", "user": "alice", "content": want}) {
					t.Fatalf("got %v", m)
				}
			}
		})
	}
	outsider.Send(`{"type":"message","room":"r","content":"let me in"}`)
	expectError(t, outsider, "Not a member of room r: join it first")
	a.Send(`{"type":"message","room":"r"}`)
	expectError(t, a, "Invalid message: content is required")
}

func TestTyping(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	a := e.member("r", "alice")
	b := e.member("r", "bob")
	expectMsg(t, a, userMsg("userJoined", "r", "bob", 2))
	a.Send(`{"type":"typing","room":"r"}`)
	expectMsg(t, b, testutil.Msg{"type": "typing", "room": "r", "user": "alice"})
	// Not to the sender: its next message is the reply to its next request.
	a.Send(`{"type":"typing","room":"nowhere"}`)
	expectError(t, a, "Not a member of room nowhere: join it first")
}

// TestTypingIsDroppable checks that typing goes out as droppable traffic
// (shed first under backpressure) and room messages do not.
func TestTypingIsDroppable(t *testing.T) {
	t.Parallel()
	d := rooms.New(rooms.Defaults())
	a, b := dialecttest.New(dialect.Request{}), dialecttest.New(dialect.Request{})
	sa, sb := d.Open(a), d.Open(b)
	sa.OnMessage(codec.KindText, []byte(`{"type":"join","room":"r","username":"alice"}`))
	sb.OnMessage(codec.KindText, []byte(`{"type":"join","room":"r","username":"bob"}`))
	b.Frames()
	sa.OnMessage(codec.KindText, []byte(`{"type":"typing","room":"r"}`))
	if n := b.Droppable(); n != 1 || len(b.Frames()) != 1 {
		t.Fatalf("typing: %d droppable frames", n)
	}
	sa.OnMessage(codec.KindText, []byte(`{"type":"message","room":"r","content":1}`))
	if n := b.Droppable(); n != 1 || len(b.Frames()) != 1 {
		t.Fatalf("message sent as droppable (%d)", n)
	}
	sa.OnClose()
	sb.OnClose()
}

// TestCountsUnderConcurrency: sessions on as many goroutines (loops)
// join one room at once, then half of them leave at once; on a single
// node every userJoined/userLeft carries the room's size at that moment
// to exactly the members of that moment: a member hears the joins after
// its own with counts rising by one up to everyone, and the leaves with
// counts falling by one.
func TestCountsUnderConcurrency(t *testing.T) {
	t.Parallel()
	const n = 16
	d := rooms.New(rooms.Defaults())
	conns := make([]*dialecttest.Conn, n)
	sessions := make([]dialect.Session, n)
	for i := range conns {
		conns[i] = dialecttest.New(dialect.Request{})
		sessions[i] = d.Open(conns[i])
		conns[i].Frames() // connected
	}
	all := func(fn func(i int)) {
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() { defer wg.Done(); fn(i) }()
		}
		wg.Wait()
	}
	counts := func(c *dialecttest.Conn, typ string) []int {
		var got []int
		for _, p := range c.Frames() {
			m := dialecttest.Reply(t, p)
			if m["type"] == typ {
				k, _ := m["userCount"].(json.Number).Int64()
				got = append(got, int(k))
			}
		}
		return got
	}
	all(func(i int) {
		sessions[i].OnMessage(codec.KindText, []byte(`{"type":"join","room":"r","username":"u`+strconv.Itoa(i)+`"}`))
	})
	seen := map[int]bool{} // each member's place in the room
	for i, c := range conns {
		got := counts(c, "userJoined")
		place := n
		if len(got) > 0 {
			place = got[0] - 1
		}
		for k, x := range got {
			if x != place+1+k {
				t.Fatalf("member %d heard userJoined counts %v: not its later joiners' places", i, got)
			}
		}
		if place+len(got) != n || seen[place] {
			t.Fatalf("member %d heard userJoined counts %v (place %d, places so far %v)", i, got, place, seen)
		}
		seen[place] = true
	}
	all(func(i int) {
		if i%2 == 0 {
			sessions[i].OnMessage(codec.KindText, []byte(`{"type":"leave","room":"r"}`))
		}
	})
	for i := 1; i < n; i += 2 {
		got := counts(conns[i], "userLeft")
		for k, x := range got {
			if x != n-1-k {
				t.Fatalf("member %d heard userLeft counts %v, want %d down to %d", i, got, n-1, n/2)
			}
		}
		if len(got) != n/2 {
			t.Fatalf("member %d heard %d userLeft, want %d", i, len(got), n/2)
		}
	}
	for _, s := range sessions {
		s.OnClose()
	}
	if r := d.Rooms(); r != 0 {
		t.Fatalf("%d rooms left after every connection closed", r)
	}
}

func TestManyRoomsPerConnection(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	a := e.member("one", "alice")
	join(t, a, "two", "alice in two")
	b := e.member("one", "bob")
	expectMsg(t, a, userMsg("userJoined", "one", "bob", 2))
	c := e.member("two", "carol")
	expectMsg(t, a, userMsg("userJoined", "two", "carol", 2))

	a.Send(`{"type":"message","room":"two","content":"to two"}`)
	for _, x := range []*testutil.Client{a, c} {
		if m := x.Read(); m.Str("room") != "two" || m.Str("user") != "alice in two" || m.Str("content") != "to two" {
			t.Fatalf("got %v", m)
		}
	}
	a.Send(`{"type":"message","room":"one","content":"to one"}`)
	for _, x := range []*testutil.Client{a, b} {
		if m := x.Read(); m.Str("room") != "one" || m.Str("user") != "alice" {
			t.Fatalf("got %v", m)
		}
	}
	// c never saw room one's message: its next is its own error.
	c.Send(`{"type":"message","room":"one","content":"x"}`)
	expectError(t, c, "Not a member of room one: join it first")

	// Disconnect leaves every room, with userLeft in each.
	a.Conn.Close()
	expectMsg(t, b, userMsg("userLeft", "one", "alice", 1))
	expectMsg(t, c, userMsg("userLeft", "two", "alice in two", 1))
}

var roomsRe = regexp.MustCompile(`partyline_rooms\{dialect="rooms",node="[^"]*"\} (\d+)`)

func (e *env) gauge() int {
	e.t.Helper()
	resp, err := http.Get(testutil.HTTPURL(e.s, "/metrics"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := roomsRe.FindSubmatch(b)
	if m == nil {
		e.t.Fatal("no rooms gauge in /metrics")
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func (e *env) awaitGauge(want int) {
	e.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for e.gauge() != want {
		if time.Now().After(deadline) {
			e.t.Fatalf("rooms gauge %d, want %d", e.gauge(), want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestEmptyRoomDeleted(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	a := e.member("x", "alice")
	join(t, a, "y", "alice")
	b := e.member("x", "bob")
	expectMsg(t, a, userMsg("userJoined", "x", "bob", 2))
	if n := e.gauge(); n != 2 {
		t.Fatalf("%d rooms, want 2", n)
	}
	a.Send(`{"type":"leave","room":"y"}`) // the last member: no userLeft to anyone
	e.awaitGauge(1)
	a.Send(`{"type":"leave","room":"x"}`)
	expectMsg(t, b, userMsg("userLeft", "x", "alice", 1))
	b.Conn.Close()
	e.awaitGauge(0)
	// A room of the same name starts over.
	c := e.member("x", "carol")
	d := e.member("x", "dave")
	expectMsg(t, c, userMsg("userJoined", "x", "dave", 2))
	_ = d
}

func TestErrors(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	c, _ := e.dial()
	const (
		format  = "Invalid message format"
		unknown = "Unknown message type"
		badRoom = "Invalid room: a non-empty string of at most 256 bytes"
		badUser = "Invalid username: a non-empty string of at most 128 bytes"
	)
	for _, tc := range []struct{ name, msg, want string }{
		{"invalid JSON", `{"type":"join"`, format},
		{"not JSON", `join lobby`, format},
		{"array", `[]`, format},
		{"number", `5`, format},
		{"null", `null`, format},
		{"no type", `{"room":"r"}`, unknown},
		{"type not a string", `{"type":1}`, unknown},
		{"unknown type", `{"type":"dance","room":"r"}`, unknown},
		{"type is case-sensitive", `{"type":"JOIN","room":"r","username":"u"}`, unknown},
		{"join without room", `{"type":"join","username":"u"}`, badRoom},
		{"join with empty room", `{"type":"join","room":"","username":"u"}`, badRoom},
		{"join with numeric room", `{"type":"join","room":7,"username":"u"}`, badRoom},
		{"join with long room", `{"type":"join","room":"` + strings.Repeat("r", 257) + `","username":"u"}`, badRoom},
		{"join without username", `{"type":"join","room":"r"}`, badUser},
		{"join with empty username", `{"type":"join","room":"r","username":""}`, badUser},
		{"join with long username", `{"type":"join","room":"r","username":"` + strings.Repeat("u", 129) + `"}`, badUser},
		{"leave without room", `{"type":"leave"}`, badRoom},
		{"leave a room not joined", `{"type":"leave","room":"r"}`, "Not a member of room r: join it first"},
		{"message without room", `{"type":"message","content":"x"}`, badRoom},
		{"message to a room not joined", `{"type":"message","room":"r","content":"x"}`, "Not a member of room r: join it first"},
		{"typing in a room not joined", `{"type":"typing","room":"r"}`, "Not a member of room r: join it first"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.Send(tc.msg)
			expectError(t, c, tc.want)
		})
	}
	c.Conn.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"join","room":"r","username":"u"}`))
	expectError(t, c, format)
	// Still open; 256-byte room and 128-byte username are fine.
	join(t, c, strings.Repeat("r", 256), strings.Repeat("u", 128))
}

func TestBoundListener(t *testing.T) {
	t.Parallel()
	e := start(t, func(c *server.Config) {
		c.Listeners = append(c.Listeners, server.Listener{Addr: "127.0.0.1:0", Dialect: "rooms"})
	})
	a := testutil.Dial(t, testutil.URL(e.s, 1, "/"))
	a.Expect("connected")
	join(t, a, "lobby", "alice")
	b := e.member("lobby", "bob") // through the /rooms prefix: the same rooms
	expectMsg(t, a, userMsg("userJoined", "lobby", "bob", 2))
	b.Send(`{"type":"typing","room":"lobby"}`)
	expectMsg(t, a, testutil.Msg{"type": "typing", "room": "lobby", "user": "bob"})
}

// FuzzRooms feeds a sequence of messages (split at 0x00) to two sessions: a
// chunk starting with 0x02 comes from the second, anything else from the
// first. It must never panic, every reply must be a JSON object of a known
// shape, and closing both must delete every room.
func FuzzRooms(f *testing.F) {
	for _, s := range []string{
		"{\"type\":\"join\",\"room\":\"r\",\"username\":\"a\"}\x00\x02{\"type\":\"join\",\"room\":\"r\",\"username\":\"b\"}\x00{\"type\":\"message\",\"room\":\"r\",\"content\":{\"x\":[1]}}\x00{\"type\":\"typing\",\"room\":\"r\"}\x00\x02{\"type\":\"leave\",\"room\":\"r\"}",
		"{\"type\":\"join\",\"room\":\"\\u00e9\\\"\",\"username\":\"\\ud800\"}\x00{\"type\":\"message\",\"room\":\"\\u00e9\\\"\",\"content\":\"\\u0000\"}",
		"{\"type\":\"leave\",\"room\":\"x\"}", "{\"type\":\"message\"}", "[", "null", "{\"type\":null}", "\xff",
		"{\"type\":\"join\",\"room\":\"r\",\"username\":\"a\"}\x00{\"type\":\"join\",\"room\":\"r\",\"username\":\"a\"}",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := rooms.New(rooms.Defaults())
		a, b := dialecttest.New(dialect.Request{}), dialecttest.New(dialect.Request{})
		sa, sb := d.Open(a), d.Open(b)
		for _, chunk := range dialecttest.Split(data, 32) {
			if len(chunk) > 0 && chunk[0] == 2 {
				sb.OnMessage(codec.KindText, chunk[1:])
			} else {
				sa.OnMessage(codec.KindText, chunk)
			}
		}
		sa.OnClose()
		sb.OnClose()
		for _, c := range []*dialecttest.Conn{a, b} {
			for _, p := range c.Frames() {
				checkReply(t, p)
			}
		}
		if n := d.Rooms(); n != 0 {
			t.Fatalf("%d rooms left after every connection closed", n)
		}
	})
}

func checkReply(t *testing.T, p []byte) {
	t.Helper()
	m := dialecttest.Reply(t, p)
	str := func(k string) bool { _, ok := m[k].(string); return ok }
	num := func(k string) bool { _, ok := m[k].(json.Number); return ok }
	ok := false
	switch m["type"] {
	case "connected":
		ok = len(m) == 2 && str("clientId")
	case "joined":
		ok = len(m) == 2 && str("room")
	case "userJoined", "userLeft":
		ok = len(m) == 4 && str("room") && str("user") && num("userCount")
	case "message":
		_, has := m["content"]
		ok = len(m) == 5 && str("room") && str("user") && num("timestamp") && has
	case "typing":
		ok = len(m) == 3 && str("room") && str("user")
	case "error":
		ok = len(m) == 2 && str("message")
	}
	if !ok {
		t.Fatalf("unexpected reply %s", p)
	}
}

// TestRoomsPerConnectionCap: a connection may be in at most
// --rooms-max-per-connection rooms; one more gets the dialect's error and
// changes nothing, joining one it is in still works, and leaving one
// makes room again.
func TestRoomsPerConnectionCap(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		cfg  int // 0: the default
		want int
	}{
		{"default", 0, rooms.Defaults().MaxPerConnection},
		{"--rooms-max-per-connection 3", 3, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, func(s *server.Config) { s.Rooms.MaxPerConnection = c.cfg })
			a, _ := e.dial()
			for i := range c.want {
				join(t, a, "r"+strconv.Itoa(i), "alice")
			}
			tooMany := "Too many rooms: a connection may be in at most " + strconv.Itoa(c.want)
			a.Send(map[string]any{"type": "join", "room": "one-more", "username": "alice"})
			expectError(t, a, tooMany)
			join(t, a, "r0", "alice")        // already a member: fine
			b := e.member("one-more", "bob") // the refused join left nothing behind: bob is alone
			a.Send(map[string]any{"type": "leave", "room": "r0"})
			join(t, a, "one-more", "alice")
			expectMsg(t, b, userMsg("userJoined", "one-more", "alice", 2))
			a.Send(map[string]any{"type": "join", "room": "r0", "username": "alice"})
			expectError(t, a, tooMany)
		})
	}
}

// TestMaxRooms: past --max-rooms a join that would create a room is
// refused; joining an existing room still works, and a room that empties
// makes room.
func TestMaxRooms(t *testing.T) {
	e := start(t, func(c *server.Config) { c.Rooms.MaxRooms = 2 })
	a := e.member("r1", "alice")
	e.member("r2", "bob")
	c, _ := e.dial()
	c.Send(map[string]any{"type": "join", "room": "r3", "username": "carol"})
	expectError(t, c, "Too many rooms on this server: join an existing room or try again later")
	join(t, c, "r1", "carol")
	a.Send(`{"type":"leave","room":"r1"}`)
	c.Send(`{"type":"leave","room":"r1"}`)
	testutil.Eventually(t, func() bool {
		c.Send(map[string]any{"type": "join", "room": "r3", "username": "carol"})
		m := c.Read()
		return m.Str("type") == "joined"
	})
}

// TestWebhooks: a room's events, with usernames, in order: created with
// its first member, closed with its last; a leave and a closed socket are
// both member.left.
func TestWebhooks(t *testing.T) {
	hooks := testutil.NewHookReceiver(t)
	e := start(t, hooks.Use)
	a := e.member("lobby", "ann")
	b := e.member("lobby", "bob")
	expectMsg(t, a, userMsg("userJoined", "lobby", "bob", 2))
	b.Send(map[string]any{"type": "leave", "room": "lobby"})
	expectMsg(t, a, userMsg("userLeft", "lobby", "bob", 1))
	_ = a.Conn.Close()
	hooks.Expect("lobby", "room.created", "member.joined ann", "member.joined bob", "member.left bob", "member.left ann", "room.closed")
	e.member("lobby", "cy") // the same name again: a new room
	hooks.Expect("lobby", "room.created", "member.joined ann", "member.joined bob", "member.left bob", "member.left ann", "room.closed",
		"room.created", "member.joined cy")
	for _, ev := range hooks.Events() {
		if ev.Dialect != "rooms" || ev.ClientID != "" {
			t.Fatalf("event %+v", ev)
		}
	}
}
