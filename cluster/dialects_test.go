package cluster_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"partyline/internal/testutil"
	"partyline/server"
)

// expectData reads the next message and checks its type and data.
func expectData(t testing.TB, c *testutil.Client, typ, data string) {
	t.Helper()
	m := c.Read()
	if m.Str("type") != typ || m.Str("data") != data {
		t.Fatalf("got %v, want %s %q", m, typ, data)
	}
}

func TestTeamsAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)
	t1 := testutil.Dial(t, testutil.URL(a, 0, "/teams"))
	t1.Send(M{"team": 1})
	expectData(t, t1, "status", "Team 1 registered successfully")

	t2 := testutil.Dial(t, testutil.URL(b, 0, "/teams"))
	t2.Send(M{"team": 2})
	expectData(t, t2, "status", "Team 2 registered successfully")
	expectData(t, t1, "status", "Team 2 connected") // from node B, through the census

	// A second connection of team 2 on A is not news to anyone.
	t2b := testutil.Dial(t, testutil.URL(a, 0, "/teams"))
	t2b.Send(M{"team": 2})
	expectData(t, t2b, "status", "Team 2 registered successfully")

	t1.Send(M{"from": 1, "to": 2, "message": "hi"})
	expectData(t, t1, "status", "Message delivered to Team 2") // first: no "Team 2 connected" twice
	for _, c := range []*testutil.Client{t2, t2b} {
		if m := c.Expect("message"); m["from"] != 1.0 || m["to"] != 2.0 || m.Str("message") != "hi" {
			t.Fatalf("team 2 got %v", m)
		}
	}
	t2.Send(M{"from": 2, "to": 1, "message": "back"})
	expectData(t, t2, "status", "Message delivered to Team 1")
	if m := t1.Expect("message"); m.Str("message") != "back" {
		t.Fatalf("team 1 got %v", m)
	}

	// Team 2 leaves both nodes: "disconnected" once, then "not connected".
	t2b.Conn.Close()
	t2.Conn.Close()
	expectData(t, t1, "status", "Team 2 disconnected")
	await(t, 5*time.Second, "team 2 seen gone", func() bool {
		t1.Send(M{"from": 1, "to": 2, "message": "anyone?"})
		return t1.Read().Str("data") == "Team 2 is not connected"
	})
}

func TestChannelsAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	mut := func(c *server.Config) {
		c.Channels.Heartbeat = time.Hour // no heartbeats in the way
		c.Channels.HeartbeatTimeout = time.Hour
		c.Channels.AuthDelay = 50 * time.Millisecond
	}
	a := node(t, ns.url, "a", mut)
	b := node(t, ns.url, "b", mut)
	u1 := testutil.Dial(t, testutil.URL(a, 0, "/channels/fishing"))
	u1.Expect("connection")
	u2 := testutil.Dial(t, testutil.URL(b, 0, "/channels/fishing"))
	u2.Expect("connection")
	other := testutil.Dial(t, testutil.URL(b, 0, "/channels/hiking"))
	other.Expect("connection")

	claim := func(c *testutil.Client, name, want string) {
		t.Helper()
		c.Send(M{"type": "identity", "user": name})
		if m := c.Expect("identity"); m.Str("success") != want {
			t.Fatalf("claim %q: %v, want %s", name, m, want)
		}
	}
	claim(u1, "fish", "true")
	claim(u2, "fish", "false") // held on node A
	claim(other, "fish", "true")
	claim(u2, "cat", "true")

	// Each name is authenticated once the auth delay (50 ms) has passed:
	// until then a message is refused ("not authenticated") and goes nowhere.
	post := func(c *testutil.Client, text string) {
		t.Helper()
		await(t, 5*time.Second, "authenticated", func() bool {
			c.Send(M{"type": "message", "text": text})
			m := c.Read()
			if m.Str("type") == "error" && m.Str("message") == "not authenticated" {
				return false
			}
			if m.Str("type") != "message" || m.Str("text") != text {
				t.Fatalf("got %v", m)
			}
			return true
		})
	}
	post(u1, "hello")
	if m := u2.Expect("message"); m.Str("text") != "hello" || m.Str("user") != "fish" {
		t.Fatalf("got %v", m)
	}
	post(u2, "meow")
	if m := u1.Expect("message"); m.Str("text") != "meow" || m.Str("user") != "cat" {
		t.Fatalf("got %v", m)
	}

	// The name is free again once its holder is gone.
	u1.Conn.Close()
	u3 := testutil.Dial(t, testutil.URL(b, 0, "/channels/fishing"))
	u3.Expect("connection")
	await(t, 5*time.Second, "name released", func() bool {
		u3.Send(M{"type": "identity", "user": "fish"})
		return u3.Expect("identity").Str("success") == "true"
	})
}

func TestRoomsAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)
	x := testutil.Dial(t, testutil.URL(a, 0, "/rooms"))
	x.Expect("connected")
	y := testutil.Dial(t, testutil.URL(b, 0, "/rooms"))
	y.Expect("connected")

	x.Send(M{"type": "join", "room": "lobby", "username": "ann"})
	x.Expect("joined")
	y.Send(M{"type": "join", "room": "lobby", "username": "bob"})
	y.Expect("joined")
	if m := x.Expect("userJoined"); m.Str("user") != "bob" || m["userCount"] != 2.0 {
		t.Fatalf("userJoined %v", m)
	}
	y.Send(M{"type": "message", "room": "lobby", "content": "hi"})
	for _, c := range []*testutil.Client{x, y} {
		if m := c.Expect("message"); m.Str("user") != "bob" || m["content"] != "hi" {
			t.Fatalf("message %v", m)
		}
	}
	y.Send(M{"type": "typing", "room": "lobby"})
	if m := x.Expect("typing"); m.Str("user") != "bob" {
		t.Fatalf("typing %v", m)
	}
	y.Send(M{"type": "leave", "room": "lobby"})
	if m := x.Expect("userLeft"); m.Str("user") != "bob" || m["userCount"] != 1.0 {
		t.Fatalf("userLeft %v", m)
	}
}

func post(t testing.TB, url string, body any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatalf("POST %s: %v", url, err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	if resp.StatusCode != 200 {
		t.Fatalf("POST %s: %d %v", url, resp.StatusCode, m)
	}
	return m
}

func TestNotifyAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)
	auth := func(s *server.Server, user string) *testutil.Client {
		c := testutil.Dial(t, testutil.URL(s, 0, "/notify"))
		c.Send(M{"type": "auth", "userId": user})
		c.Expect("authenticated")
		return c
	}
	u := auth(a, "u1")
	v := auth(b, "u1")
	w := auth(b, "u2")

	// POST on A reaches u1 on both nodes; the count covers both once B's
	// census entry is written.
	last := 0
	await(t, 5*time.Second, "u1 counted on both nodes", func() bool {
		last++
		m := post(t, testutil.HTTPURL(a, "/api/notify"), M{"userId": "u1", "notification": M{"seq": last}})
		return m["connections"] == 2.0 && m["delivered"] == true
	})
	for _, c := range []*testutil.Client{u, v} {
		for {
			m := c.Expect("notification")
			if m["seq"] == float64(last) {
				break
			}
		}
	}
	m := post(t, testutil.HTTPURL(b, "/api/notify"), M{"userId": "nobody", "notification": M{}})
	if m["connections"] != 0.0 || m["delivered"] != false {
		t.Fatalf("notify nobody: %v", m)
	}
	await(t, 5*time.Second, "every connection counted", func() bool {
		m := post(t, testutil.HTTPURL(b, "/api/broadcast"), M{"msg": fmt.Sprint("b")})
		return m["connections"] == 3.0
	})
	for _, c := range []*testutil.Client{u, v, w} {
		for c.Read().Str("type") != "broadcast" {
		}
	}
}
