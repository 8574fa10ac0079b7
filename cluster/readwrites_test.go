package cluster_test

import (
	"fmt"
	"strings"
	"testing"

	"partyline/dialect/chat/chattest"
	"partyline/internal/testutil"
)

// TestTeamsReadYourWrites: once a team's "registered" reached its client
// on node B, a send to it from node A succeeds at once, every time.
func TestTeamsReadYourWrites(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)
	t1 := testutil.Dial(t, testutil.URL(a, 0, "/teams"))
	t1.Send(M{"team": 1})
	expectData(t, t1, "status", "Team 1 registered successfully")
	for i := 0; i < 20; i++ {
		t2 := testutil.Dial(t, testutil.URL(b, 0, "/teams"))
		t2.Send(M{"team": 2})
		expectData(t, t2, "status", "Team 2 registered successfully")
		msg := fmt.Sprint("hi ", i)
		t1.Send(M{"from": 1, "to": 2, "message": msg})
		for { // skip "Team 2 connected/disconnected" notices
			m := t1.Read()
			d := m.Str("data")
			if d == "Message delivered to Team 2" {
				break
			}
			if m.Str("type") == "error" || !strings.HasPrefix(d, "Team 2 ") || strings.HasPrefix(d, "Message") {
				t.Fatalf("round %d: %v", i, m)
			}
		}
		if m := t2.Expect("message"); m.Str("message") != msg {
			t.Fatalf("round %d: team 2 got %v", i, m)
		}
		t2.Conn.Close()
	}
}

// TestPresenceReadYourWrites: once a user's AUTH on node A was answered, a
// watcher subscribing on node B sees the user online in its first status,
// every time; a watcher's contacts' statuses at login are as fresh.
func TestPresenceReadYourWrites(t *testing.T) {
	ns := startNATS(t)
	a := chatServer(t, ns.url, "a")
	b := chatServer(t, ns.url, "b")
	carol := user(t, "carol")
	pc := b.Login(t, "/presence", carol)
	p := chattest.NewStream(t, pc)
	for i := 0; i < 20; i++ {
		u := user(t, fmt.Sprint("u", i))
		a.Login(t, "/presence", u)
		pc.Send(M{"type": "SUBSCRIBE_PRESENCE", "usernames": []string{u}})
		for { // statuses of earlier rounds' users may come first
			m := p.Next()
			if m.Str("type") == "SUCCESS" || m.Str("username") != u {
				continue
			}
			if m.Str("type") != "PRESENCE_UPDATE" || m.Str("status") != "online" {
				t.Fatalf("round %d: %v, want %s online", i, m, u)
			}
			break
		}
	}
}
