package chat_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"partyline/dialect/chat/chattest"
	"partyline/internal/security"
	"partyline/internal/testutil"
	"partyline/server"
)

// healthz returns the parsed /healthz body of s.
func healthz(t *testing.T, url string) map[string]any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("healthz %q: %v", b, err)
	}
	return m
}

// partyWorks creates a party room and exchanges one message in it.
func partyWorks(t *testing.T, url string) {
	t.Helper()
	a := testutil.Dial(t, url)
	a.Send(map[string]any{"type": "create", "clientId": "a1", "maxClients": 2})
	room := a.Expect("created").Str("room")
	b := testutil.Dial(t, url)
	b.Send(map[string]any{"type": "join", "clientId": "b1", "room": room})
	b.Expect("joined")
	a.Expect("peer_joined")
	b.Send(map[string]any{"type": "send", "data": map[string]any{"x": 1}})
	if m := a.Expect("message"); m.Str("from") != "b1" {
		t.Fatalf("party message %v", m)
	}
}

// TestStorageFullRefusesChatOnly sets --store-min-free above what any disk
// has free: every chat write is refused to its sender with a "storage
// full" ERROR on an open connection, counted as a security event, /healthz
// reports the store degraded, reads still work, and the party dialect on
// the same server does not notice.
func TestStorageFullRefusesChatOnly(t *testing.T) {
	e := chattest.Start(t, func(c *server.Config) { c.Presence.StoreMinFree = 1 << 60 })
	alice := e.Login(t, "/chat", "alice")
	before := security.Count("storage_full")
	alice.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": "hi"})
	m := chattest.ExpectError(t, alice, "storage full")
	if !strings.HasPrefix(m.Str("msg"), "storage full") {
		t.Fatalf("msg %q", m.Str("msg"))
	}
	alice.Send(map[string]any{"type": "JOIN_GROUP", "groupId": "g", "username": "alice"})
	chattest.ExpectError(t, alice, "storage full")
	if n := security.Count("storage_full") - before; n < 2 {
		t.Fatalf("storage_full events: %d, want 2", n)
	}
	alice.Send(map[string]any{"type": "GET_ONE_TO_ONE_HISTORY", "to": "bob"})
	if h := alice.Expect("ONE_TO_ONE_CHAT_HISTORY"); len(h["messages"].([]any)) != 0 {
		t.Fatalf("history %v", h)
	}
	hz := healthz(t, testutil.HTTPURL(e.Srv, "/healthz"))
	checks, _ := hz["checks"].(map[string]any)
	if hz["status"] != "degraded" || !strings.Contains(checks["store"].(string), "storage full") {
		t.Fatalf("healthz %v", hz)
	}
	partyWorks(t, e.URL("/party"))
	alice.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": "still open?"})
	chattest.ExpectError(t, alice, "storage full")
}

// TestHealthOKWithRoom: with the default floor on a disk with room, the
// store is healthy after a write.
func TestHealthOKWithRoom(t *testing.T) {
	e := chattest.Start(t, nil)
	alice := e.Login(t, "/chat", "alice")
	alice.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": "hi"})
	chattest.ExpectSuccess(t, alice, "Message sent")
	if hz := healthz(t, testutil.HTTPURL(e.Srv, "/healthz")); hz["status"] != "ok" {
		t.Fatalf("healthz %v", hz)
	}
}

// TestRateQuota crosses --chat-max-messages-per-second: with 2 a second
// (burst 2) the third message in a row is refused (unless the test was so
// slow that a token came back: then a later one is) with its own ERROR and
// a chat_rate_limited event, the connection stays open, another user is
// not affected, and the same user may send again once a token is back.
func TestRateQuota(t *testing.T) {
	e := chattest.Start(t, func(c *server.Config) { c.Presence.ChatMaxMessagesPerSecond = 2 })
	alice := e.Login(t, "/chat", "alice")
	before := security.Count("chat_rate_limited")
	for range 2 {
		alice.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": "hi"})
		chattest.ExpectSuccess(t, alice, "Message sent")
	}
	for i := 0; ; i++ {
		alice.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": "too fast"})
		if m := alice.Read(); m.Str("type") == "ERROR" {
			if !strings.Contains(m.Str("msg"), "Rate limit exceeded: at most 2 messages per second") {
				t.Fatalf("got %v", m)
			}
			break
		} else if i == 10 {
			t.Fatalf("11 messages in a row after a burst of 2 at 2/s all accepted: %v", m)
		}
	}
	if n := security.Count("chat_rate_limited") - before; n != 1 {
		t.Fatalf("chat_rate_limited events: %d, want 1", n)
	}
	carol := e.Login(t, "/chat", "carol")
	carol.Send(map[string]any{"type": "GROUP_CHAT", "groupId": "g", "content": "x"})
	chattest.ExpectError(t, carol, "Not a member") // served: carol has her own bucket
	deadline := time.Now().Add(5 * time.Second)
	for {
		alice.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": "later"})
		m := alice.Read()
		if m.Str("type") == "SUCCESS" {
			break
		}
		if !strings.Contains(m.Str("msg"), "Rate limit") || time.Now().After(deadline) {
			t.Fatalf("after waiting: %v", m)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDailyBytesQuota crosses --chat-max-bytes-per-day: content up to
// the quota is stored, the message that would cross it is refused with
// its own ERROR and a chat_quota_exceeded event, and a message that still
// fits goes through; a refused write (not a member) does not use quota.
func TestDailyBytesQuota(t *testing.T) {
	e := chattest.Start(t, func(c *server.Config) { c.Presence.ChatMaxBytesPerDay = 10 })
	alice := e.Login(t, "/chat", "alice")
	before := security.Count("chat_quota_exceeded")
	alice.Send(map[string]any{"type": "GROUP_CHAT", "groupId": "g", "content": "0123456789"})
	chattest.ExpectError(t, alice, "Not a member") // refunded
	alice.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": "12345"})
	chattest.ExpectSuccess(t, alice, "Message sent")
	alice.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": "123456"})
	chattest.ExpectError(t, alice, "Daily storage quota exceeded: at most 10 bytes")
	if n := security.Count("chat_quota_exceeded") - before; n != 1 {
		t.Fatalf("chat_quota_exceeded events: %d, want 1", n)
	}
	alice.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": "12345"})
	chattest.ExpectSuccess(t, alice, "Message sent")
	alice.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": "1"})
	chattest.ExpectError(t, alice, "Daily storage quota exceeded")
	bob := e.Login(t, "/chat", "bob")
	bob.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "alice", "content": "0123456789"})
	chattest.ExpectSuccess(t, bob, "Message sent")
}

// TestAuthFailedEvents: a bad AUTH token and a bad handshake token are
// both counted as auth_failed.
func TestAuthFailedEvents(t *testing.T) {
	e := chattest.Start(t, nil)
	before := security.Count("auth_failed")
	c := e.Dial(t, "/chat")
	c.Send(map[string]any{"type": "AUTH", "token": "not.a.token"})
	chattest.ExpectError(t, c, "Authentication failed")
	if _, err := e.DialHeader(t, "/presence", http.Header{"Authorization": {"Bearer not.a.token"}}); err == nil {
		t.Fatal("handshake with a bad token accepted")
	}
	testutil.Eventually(t, func() bool { return security.Count("auth_failed")-before >= 2 })
}
