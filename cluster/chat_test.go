package cluster_test

import (
	"fmt"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/dialect/chat/chattest"
	"partyline/internal/testutil"
	"partyline/server"
)

// chatServer starts a node with the chat and presence dialects (HS256 tokens
// with chattest.Secret, a short presence grace).
func chatServer(t testing.TB, url, name string) *chattest.Env {
	t.Helper()
	s := node(t, url, name, func(c *server.Config) {
		c.JWT.Secret = chattest.Secret
		c.Presence.Grace = 200 * time.Millisecond
	})
	return &chattest.Env{T: t, Srv: s}
}

// user makes a username unique to this run, so that tests against a
// shared $NATS_URL never see each other's history or presence.
func user(t testing.TB, name string) string { return name + "-" + runID + "-" + t.Name() }

// expectChat reads the next message and checks type, from and content.
func expectChat(t testing.TB, c *testutil.Client, typ, from, content string) testutil.Msg {
	t.Helper()
	m := c.Read()
	if m.Str("type") != typ || m.Str("from") != from || m.Str("content") != content {
		t.Fatalf("got %v, want %s from %s %q", m, typ, from, content)
	}
	return m
}

// historyContents asks c for a history page (req; nil if already asked)
// and returns its contents, oldest first.
func historyContents(t testing.TB, c *testutil.Client, req M) []string {
	t.Helper()
	if req != nil {
		c.Send(req)
	}
	m := c.Read()
	msgs, ok := m["messages"].([]any)
	if !ok {
		t.Fatalf("history reply %v", m)
	}
	out := make([]string, len(msgs))
	for i, x := range msgs {
		out[i] = x.(map[string]any)["content"].(string)
	}
	return out
}

// presenceUpdate reads the next message from s and checks it is a
// PRESENCE_UPDATE of who with status.
func presenceUpdate(t testing.TB, s *chattest.Stream, who, status string) {
	t.Helper()
	m := s.Next()
	if m.Str("type") != "PRESENCE_UPDATE" || m.Str("username") != who || m.Str("status") != status {
		t.Fatalf("got %v, want PRESENCE_UPDATE %s %s", m, who, status)
	}
}

// untilStatus reads PRESENCE_UPDATEs of who from s until one says status.
func untilStatus(t testing.TB, s *chattest.Stream, who, status string) {
	t.Helper()
	for {
		m := s.Next()
		if m.Str("type") != "PRESENCE_UPDATE" || m.Str("username") != who {
			t.Fatalf("got %v, want %s's status", m, who)
		}
		if m.Str("status") == status {
			return
		}
	}
}

// Chat between users on different nodes: deliveries to every device of
// the recipients and the sender's other devices, group membership and
// history shared through JetStream, INFO to members on other nodes.
func TestChatAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := chatServer(t, ns.url, "a")
	b := chatServer(t, ns.url, "b")
	alice, bob, group := user(t, "alice"), user(t, "bob"), user(t, "g")

	al := a.Login(t, "/chat", alice)
	bo := b.Login(t, "/chat", bob)
	bo2 := a.Login(t, "/chat", bob) // bob's second device, on the other node

	al.Send(M{"type": "ONE_TO_ONE_CHAT", "to": bob, "content": "hi bob", "chatId": "ab"})
	id := chattest.ExpectSuccess(t, al, "Message sent").Str("messageId")
	for _, c := range []*testutil.Client{bo, bo2} {
		if m := expectChat(t, c, "ONE_TO_ONE_CHAT", alice, "hi bob"); m.Str("messageId") != id {
			t.Fatalf("delivered id %s, acked %s", m.Str("messageId"), id)
		}
	}
	bo.Send(M{"type": "ONE_TO_ONE_CHAT", "to": alice, "content": "hi alice", "chatId": "ab"})
	chattest.ExpectSuccess(t, bo, "Message sent")
	expectChat(t, al, "ONE_TO_ONE_CHAT", bob, "hi alice")
	expectChat(t, bo2, "ONE_TO_ONE_CHAT", bob, "hi alice") // the sender's other device

	// Groups: membership made on one node holds on the other.
	chattest.Join(t, al, alice, group)
	chattest.Join(t, bo, bob, group)
	if m := al.Expect("INFO"); m.Str("msg") != bob+" joined group "+group {
		t.Fatalf("INFO %v", m)
	}
	bo2.Send(M{"type": "JOIN_GROUP", "groupId": group, "username": bob})
	chattest.ExpectError(t, bo2, "Already a member")
	al.Send(M{"type": "GROUP_CHAT", "groupId": group, "content": "hello group"})
	chattest.ExpectSuccess(t, al, "Message sent")
	for _, c := range []*testutil.Client{bo, bo2} {
		expectChat(t, c, "GROUP_CHAT", alice, "hello group")
	}

	// History written through node A, read on node B, and the reverse.
	h := historyContents(t, bo, M{"type": "GET_ONE_TO_ONE_HISTORY", "to": alice, "chatId": "ab"})
	if fmt.Sprint(h) != "[hi bob hi alice]" {
		t.Fatalf("1:1 history on B: %v", h)
	}
	if h := historyContents(t, bo, M{"type": "GET_GROUP_CHAT_HISTORY", "groupId": group}); fmt.Sprint(h) != "[hello group]" {
		t.Fatalf("group history on B: %v", h)
	}
	bo.Send(M{"type": "LEAVE_GROUP", "groupId": group, "username": bob})
	chattest.ExpectSuccess(t, bo, "Left group "+group)
	al.Expect("INFO")
	bo2.Send(M{"type": "GET_GROUP_CHAT_HISTORY", "groupId": group})
	chattest.ExpectError(t, bo2, "Not a member")
}

// Presence counts connections on every node: a user is online while it
// has one anywhere, and offline once, after the grace period, when the
// last is gone.
func TestPresenceAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := chatServer(t, ns.url, "a")
	b := chatServer(t, ns.url, "b")
	alice, carol := user(t, "alice"), user(t, "carol")

	// carol and alice are contacts (a one-to-one conversation).
	al := a.Login(t, "/chat", alice)
	ca := b.Login(t, "/chat", carol)
	al.Send(M{"type": "ONE_TO_ONE_CHAT", "to": carol, "content": "hello"})
	chattest.ExpectSuccess(t, al, "Message sent")
	ca.Read()

	// carol watches on B: alice (connected to A only) is online. (B may
	// answer "offline" first if A's census write is still on its way.)
	p := chattest.NewStream(t, b.Login(t, "/presence", carol))
	untilStatus(t, p, alice, "online")

	// A second connection of alice on B, then the first one goes: still
	// online (no update); then the last one goes: offline, once.
	al2 := b.Login(t, "/chat", alice)
	al.Conn.Close()
	p.Silence(600 * time.Millisecond) // well past the grace period
	al2.Conn.Close()
	presenceUpdate(t, p, alice, "offline")

	// Back on A: online again, for a watcher on A too.
	a.Login(t, "/chat", alice)
	presenceUpdate(t, p, alice, "online")
	pa := chattest.NewStream(t, a.Login(t, "/presence", carol))
	presenceUpdate(t, pa, alice, "online")
}

// A node killed with SIGKILL: every message it acknowledged is in the
// history the other nodes serve, exactly once, and its users go offline
// for watchers on the other nodes after its lease and the grace period.
func TestChatNodeKilled(t *testing.T) {
	ns := startNATS(t)
	victim, base := startVictim(t, ns.url, runID+"-chatvictim",
		"--jwt-secret", chattest.Secret, "--presence-grace", "200ms", "--log-level", "warn")
	vurl := base + "/chat"
	await(t, 20*time.Second, "victim node accepting", func() bool {
		c, err := testutil.TryDial(t, vurl, nil)
		if err == nil {
			c.Conn.Close()
		}
		return err == nil
	})

	a := chatServer(t, ns.url, "a")
	alice, carol := user(t, "alice"), user(t, "carol")
	// carol (on A) watches alice, who writes to her through the victim.
	ca := a.Login(t, "/chat", carol)
	pc := a.Login(t, "/presence", carol)
	p := chattest.NewStream(t, pc)

	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	vc, _, err := d.Dial(vurl, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer vc.Close()
	send := func(v M) {
		vc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if err := vc.WriteJSON(v); err != nil {
			t.Fatal(err)
		}
	}
	send(M{"type": "AUTH", "token": chattest.Token(t, alice, time.Hour)})
	var m M
	vc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if err := vc.ReadJSON(&m); err != nil || m["type"] != "SUCCESS" {
		t.Fatalf("AUTH on the victim: %v %v", m, err)
	}
	// carol subscribes to alice: online, maybe after an offline status if
	// the victim's census entry is still on its way.
	pc.Send(M{"type": "SUBSCRIBE_PRESENCE", "usernames": []string{alice}})
	if r := p.Next(); r.Str("type") != "SUCCESS" {
		t.Fatalf("subscribe: %v", r)
	}
	untilStatus(t, p, alice, "online")

	// Pipelined sends; the node is killed while acknowledgements flow.
	const n = 400
	acked := map[string]string{} // messageId -> content
	go func() {
		for i := range n {
			vc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if vc.WriteJSON(M{"type": "ONE_TO_ONE_CHAT", "to": carol, "content": strconv.Itoa(i)}) != nil {
				return
			}
		}
	}()
	for len(acked) < n {
		vc.SetReadDeadline(time.Now().Add(10 * time.Second))
		var r M
		if err := vc.ReadJSON(&r); err != nil {
			break // the kill
		}
		if r["type"] == "SUCCESS" {
			acked[r["messageId"].(string)] = strconv.Itoa(len(acked))
			if len(acked) == n/4 {
				_ = victim.Process.Signal(syscall.SIGKILL)
			}
		}
	}
	if len(acked) < n/4 {
		t.Fatalf("only %d acknowledged before the kill", len(acked))
	}
	killed := time.Now()

	// Presence: offline after the lease (2 s) and the grace (200 ms). (A
	// repeat of "online" may come first: the subscription's answer and
	// the update that raced it.)
	untilStatus(t, p, alice, "offline")
	t.Logf("%d acknowledged; offline %v after SIGKILL (lease 2s, grace 200ms)", len(acked), time.Since(killed).Round(time.Millisecond))

	// History on A: every acknowledged message, exactly once, in order.
	seen := map[string]int{}
	var ids []string
	before := ""
	for {
		req := M{"type": "GET_ONE_TO_ONE_HISTORY", "to": alice, "limit": 200}
		if before != "" {
			req["before"] = before
		}
		ca.Send(req)
		var page testutil.Msg
		for page == nil {
			if r := ca.Read(); r.Str("type") == "ONE_TO_ONE_CHAT_HISTORY" {
				page = r
			}
		}
		msgs := page["messages"].([]any)
		for i := len(msgs) - 1; i >= 0; i-- {
			x := msgs[i].(map[string]any)
			seen[x["messageId"].(string)]++
			ids = append(ids, x["messageId"].(string))
		}
		if !page["hasMore"].(bool) || len(msgs) == 0 {
			break
		}
		before = msgs[0].(map[string]any)["messageId"].(string)
	}
	for id, content := range acked {
		if seen[id] != 1 {
			t.Fatalf("acknowledged message %s (%s) is in history %d times", id, content, seen[id])
		}
	}
	for i := 1; i < len(ids); i++ {
		if ids[i] >= ids[i-1] {
			t.Fatalf("history not newest first at %d: %s then %s", i, ids[i-1], ids[i])
		}
	}
	t.Logf("history holds %d messages, %d acknowledged", len(ids), len(acked))
}

// The NATS server restarts (same port, same store): chat on both nodes
// carries on, and history and groups written before are still there.
func TestChatNATSRestart(t *testing.T) {
	ns := startNATS(t)
	ns.embedded(t)
	a := chatServer(t, ns.url, "a")
	b := chatServer(t, ns.url, "b")
	alice, bob, group := user(t, "alice"), user(t, "bob"), user(t, "g")
	al := a.Login(t, "/chat", alice)
	bo := b.Login(t, "/chat", bob)
	chattest.Join(t, al, alice, group)
	chattest.Join(t, bo, bob, group)
	al.Expect("INFO")
	al.Send(M{"type": "GROUP_CHAT", "groupId": group, "content": "before"})
	chattest.ExpectSuccess(t, al, "Message sent")
	expectChat(t, bo, "GROUP_CHAT", alice, "before")

	ns.stop()
	ns.start()

	// A send right after the restart may be refused (JetStream is coming
	// back) or acknowledged while B is still re-subscribing (live delivery
	// is core NATS, at most once: the message is in history). The nodes
	// carry on: soon an acknowledged message is delivered at once.
	bobs := reader(bo)
	try, acked := 0, map[string]bool{}
	var last string
	await(t, 30*time.Second, "group message after the restart", func() bool {
		try++
		last = fmt.Sprint("after ", try)
		al.Send(M{"type": "GROUP_CHAT", "groupId": group, "content": last})
		if r := al.Read(); r.Str("type") != "SUCCESS" {
			t.Logf("during the restart: %v", r)
			return false
		}
		acked[last] = true
		for {
			select {
			case m := <-bobs:
				if m.Str("content") == last {
					return true
				}
			case <-time.After(time.Second):
				t.Logf("%q acknowledged, not delivered live", last)
				return false
			}
		}
	})
	// History: "before" and every acknowledged message, once each (a send
	// refused during the restart may or may not have landed).
	h := historyContents(t, al, M{"type": "GET_GROUP_CHAT_HISTORY", "groupId": group})
	count := map[string]int{}
	for _, c := range h {
		count[c]++
	}
	for c := range acked {
		if count[c] != 1 {
			t.Fatalf("acknowledged %q is in history %d times: %v", c, count[c], h)
		}
	}
	if count["before"] != 1 || h[0] != "before" || h[len(h)-1] != last {
		t.Fatalf("history after the restart: %v", h)
	}
}
