package presence_test

import (
	"fmt"
	"testing"
	"time"

	"partyline/dialect/chat/chattest"
	"partyline/dialect/presence"
	"partyline/internal/testutil"
	"partyline/server"
)

const timeLayout = "2006-01-02T15:04:05.000Z"

// expectUpdate reads the next message from s and checks it is a
// PRESENCE_UPDATE for user with status; it returns the update's time.
func expectUpdate(t *testing.T, s *chattest.Stream, user, status string) time.Time {
	t.Helper()
	m := s.Next()
	if m.Str("type") != "PRESENCE_UPDATE" || m.Str("username") != user || m.Str("status") != status {
		t.Fatalf("got %v, want PRESENCE_UPDATE %s %s", m, user, status)
	}
	ts, err := time.Parse(timeLayout, m.Str("timestamp"))
	if err != nil || time.Since(ts).Abs() > time.Minute {
		t.Fatalf("timestamp %q: %v", m.Str("timestamp"), err)
	}
	return ts
}

func expectSuccess(t *testing.T, s *chattest.Stream, msg string) {
	t.Helper()
	if m := s.Next(); m.Str("type") != "SUCCESS" || m.Str("msg") != msg {
		t.Fatalf("got %v, want SUCCESS %q", m, msg)
	}
}

// watch logs user in on /presence and streams its messages after SUCCESS.
func watch(t *testing.T, e *chattest.Env, user string) (*testutil.Client, *chattest.Stream) {
	t.Helper()
	c := e.Login(t, "/presence", user)
	return c, chattest.NewStream(t, c)
}

func TestContactsGoOnlineAndOffline(t *testing.T) {
	t.Parallel()
	const grace = 300 * time.Millisecond
	e := chattest.Start(t, func(c *server.Config) { c.Presence.Grace = grace })
	a1 := e.Login(t, "/chat", "alice")
	chattest.Join(t, a1, "alice", "g")
	b := e.Login(t, "/chat", "bob")
	chattest.Join(t, b, "bob", "g")
	a1.Expect("INFO")

	// Right after AUTH: the current status of each contact.
	_, p := watch(t, e, "bob")
	expectUpdate(t, p, "alice", "online")

	// alice's last connection closes: offline after the grace period.
	closed := time.Now()
	a1.Conn.Close()
	expectUpdate(t, p, "alice", "offline")
	if d := time.Since(closed); d < grace-50*time.Millisecond {
		t.Fatalf("offline after %v, before the %v grace", d, grace)
	}

	// Online again through /presence alone.
	a2 := e.Login(t, "/presence", "alice")
	expectUpdate(t, p, "alice", "online")

	// A quick reconnect (inside the grace period) makes no update.
	a2.Conn.Close()
	time.Sleep(grace / 3)
	a3 := e.Login(t, "/chat", "alice")
	p.Silence(2 * grace)

	// /chat and /presence connections count together: closing one of two
	// keeps alice online.
	a4 := e.Login(t, "/presence", "alice")
	a3.Conn.Close()
	p.Silence(2 * grace)
	a4.Conn.Close()
	expectUpdate(t, p, "alice", "offline")
	p.Silence(2 * grace) // and only once
}

func TestSnapshotAfterAuth(t *testing.T) {
	t.Parallel()
	e := chattest.Start(t, nil)
	// dave and erin share a one-to-one conversation; dave and frank a group
	// that frank has left (no longer contacts); gina is a group contact
	// who is offline.
	dave := e.Login(t, "/chat", "dave")
	dave.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "erin", "content": "hi"})
	chattest.ExpectSuccess(t, dave, "Message sent")
	gina := e.Login(t, "/chat", "gina")
	chattest.Join(t, gina, "gina", "h")
	// An observer subscribed to gina sees her go offline: her grace period is over.
	obs, po := watch(t, e, "obs")
	obs.Send(map[string]any{"type": "SUBSCRIBE_PRESENCE", "usernames": []string{"gina"}})
	expectSuccess(t, po, "Subscribed to 1 users")
	expectUpdate(t, po, "gina", "online")
	gina.Conn.Close()
	expectUpdate(t, po, "gina", "offline")

	_, p := watch(t, e, "erin")
	expectUpdate(t, p, "dave", "online")
	erinChat := e.Login(t, "/chat", "erin")
	chattest.Join(t, erinChat, "erin", "h")
	p.Silence(300 * time.Millisecond) // erin's own status is not sent to erin

	_, p2 := watch(t, e, "erin")
	// Contacts in byte order: dave (one-to-one), gina (group h, offline).
	expectUpdate(t, p2, "dave", "online")
	expectUpdate(t, p2, "gina", "offline")
}

func TestSubscribe(t *testing.T) {
	t.Parallel()
	e := chattest.Start(t, nil)
	c, p := watch(t, e, "carol")
	p.Silence(200 * time.Millisecond) // no contacts: nothing after SUCCESS

	alice := e.Login(t, "/chat", "alice")
	c.Send(map[string]any{"type": "SUBSCRIBE_PRESENCE", "usernames": []string{"alice", "zed", "alice"}})
	expectSuccess(t, p, "Subscribed to 2 users")
	expectUpdate(t, p, "alice", "online")
	expectUpdate(t, p, "zed", "offline")

	alice.Conn.Close()
	expectUpdate(t, p, "alice", "offline")
	zed := e.Login(t, "/presence", "zed")
	expectUpdate(t, p, "zed", "online")
	_ = zed

	for _, bad := range []any{
		map[string]any{"type": "SUBSCRIBE_PRESENCE"},
		map[string]any{"type": "SUBSCRIBE_PRESENCE", "usernames": "alice"},
		map[string]any{"type": "SUBSCRIBE_PRESENCE", "usernames": []any{"alice", 3}},
		map[string]any{"type": "SUBSCRIBE_PRESENCE", "usernames": []string{}},
	} {
		c.Send(bad)
		if m := p.Next(); m.Str("type") != "ERROR" {
			t.Fatalf("%v: got %v, want ERROR", bad, m)
		}
	}
	c.Send(`{"type":"WHAT"}`)
	if m := p.Next(); m.Str("type") != "ERROR" || m.Str("msg") != "Unknown message type: WHAT" {
		t.Fatalf("unknown type: %v", m)
	}
}

func TestPresenceNeedsAuth(t *testing.T) {
	t.Parallel()
	e := chattest.Start(t, nil)
	c := e.Dial(t, "/presence")
	c.Send(map[string]any{"type": "SUBSCRIBE_PRESENCE", "usernames": []string{"x"}})
	chattest.ExpectError(t, c, "Not authenticated")
	c.Send(`{"type":"AUTH","token":"x.y.z"}`)
	chattest.ExpectError(t, c, "Authentication failed")
	c.ExpectClose(4401)
}

// TestSubscriptionCap: a /presence connection may subscribe to at most
// --presence-max-subscriptions distinct names; a request that would pass
// it gets an ERROR and changes nothing, names already subscribed do not
// count again.
func TestSubscriptionCap(t *testing.T) {
	t.Parallel()
	names := func(prefix string, n int) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s%d", prefix, i))
		}
		return out
	}
	for _, c := range []struct {
		name string
		cfg  int // 0: the default
		want int
	}{
		{"default", 0, presence.DefaultMaxSubscriptions},
		{"--presence-max-subscriptions 5", 5, 5},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := chattest.Start(t, func(s *server.Config) { s.Presence.MaxSubscriptions = c.cfg })
			w, p := watch(t, e, "carol")
			subscribe := func(names []string) {
				t.Helper()
				w.Send(map[string]any{"type": "SUBSCRIBE_PRESENCE", "usernames": names})
			}
			tooMany := fmt.Sprintf("Too many subscriptions: at most %d names per connection", c.want)
			expectRefused := func() {
				t.Helper()
				if m := p.Next(); m.Str("type") != "ERROR" || m.Str("msg") != tooMany {
					t.Fatalf("got %v, want ERROR %q", m, tooMany)
				}
			}
			expectAccepted := func(names []string) {
				t.Helper()
				expectSuccess(t, p, fmt.Sprintf("Subscribed to %d users", len(names)))
				for _, n := range names {
					expectUpdate(t, p, n, "offline")
				}
			}

			first := names("a", c.want-1)
			subscribe(first)
			expectAccepted(first)
			subscribe(names("b", 2)) // one too many
			expectRefused()
			subscribe(first[:1]) // already subscribed: no new name
			expectAccepted(first[:1])
			last := names("c", 1)
			subscribe(last) // exactly at the cap
			expectAccepted(last)
			subscribe(names("d", 1))
			expectRefused()
			// The refused names were not subscribed: they come online unseen.
			e.Login(t, "/presence", "b0")
			e.Login(t, "/presence", "c0")
			expectUpdate(t, p, "c0", "online")
		})
	}
}
