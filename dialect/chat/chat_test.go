package chat_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/dialect/chat/chattest"
	"partyline/internal/testutil"
	"partyline/server"
)

const timeLayout = "2006-01-02T15:04:05.000Z"

// checkDelivered checks the delivered format: the fields in want, an
// ISO-8601 UTC timestamp within a minute of now, and messageId.
func checkDelivered(t *testing.T, m testutil.Msg, want map[string]string, id string) {
	t.Helper()
	for k, v := range want {
		if m.Str(k) != v {
			t.Fatalf("%s = %q, want %q in %v", k, m.Str(k), v, m)
		}
	}
	ts, err := time.Parse(timeLayout, m.Str("timestamp"))
	if err != nil || time.Since(ts).Abs() > time.Minute {
		t.Fatalf("timestamp %q: %v", m.Str("timestamp"), err)
	}
	if id != "" && m.Str("messageId") != id {
		t.Fatalf("messageId %q, want %q", m.Str("messageId"), id)
	}
	if m.Str("messageId") == "" {
		t.Fatalf("no messageId in %v", m)
	}
}

func TestDirectMessages(t *testing.T) {
	t.Parallel()
	e := chattest.Start(t, nil)
	alice1 := e.Login(t, "/chat", "alice")
	alice2 := e.Login(t, "/chat", "alice")
	bob1 := e.Login(t, "/chat", "bob")
	bob2 := e.Login(t, "/chat", "bob")
	carol := e.Login(t, "/chat", "carol")

	alice1.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "from": "alice", "to": "bob", "content": "Hello there!", "chatId": "chat_123"})
	ack := chattest.ExpectSuccess(t, alice1, "Message sent")
	id := ack.Str("messageId")
	want := map[string]string{"type": "ONE_TO_ONE_CHAT", "from": "alice", "to": "bob", "content": "Hello there!", "chatId": "chat_123"}
	for _, c := range []*testutil.Client{bob1, bob2, alice2} {
		checkDelivered(t, c.Read(), want, id)
	}
	// The sender's connection gets only the ack; carol gets nothing. Both
	// prove it by answering the next request first.
	for _, c := range []*testutil.Client{alice1, carol} {
		c.Send(`{"type":"NOPE"}`)
		chattest.ExpectError(t, c, "Unknown message type: NOPE")
	}

	// No chatId: one is derived; no from: the authenticated user.
	bob2.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "alice", "content": "hi back"})
	id2 := chattest.ExpectSuccess(t, bob2, "Message sent").Str("messageId")
	if id2 <= id {
		t.Fatalf("messageId %q does not sort after %q", id2, id)
	}
	want = map[string]string{"from": "bob", "to": "alice", "content": "hi back", "chatId": "alice:bob"}
	for _, c := range []*testutil.Client{alice1, alice2, bob1} {
		checkDelivered(t, c.Read(), want, id2)
	}

	// A note to self reaches the user's other connections only.
	carol2 := e.Login(t, "/chat", "carol")
	carol.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "from": "carol", "to": "carol", "content": "note"})
	chattest.ExpectSuccess(t, carol, "Message sent")
	checkDelivered(t, carol2.Read(), map[string]string{"from": "carol", "to": "carol"}, "")
	carol.Send(`{"type":"NOPE"}`)
	chattest.ExpectError(t, carol, "Unknown message type")

	for _, tc := range []struct {
		msg  map[string]any
		want string
	}{
		{map[string]any{"type": "ONE_TO_ONE_CHAT", "from": "bob", "to": "carol", "content": "spoof"}, "from must be the authenticated user (alice)"},
		{map[string]any{"type": "ONE_TO_ONE_CHAT", "from": "alice", "content": "x"}, "Missing to"},
		{map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": ""}, "content"},
		{map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": 7}, "content"},
		{map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": "x", "chatId": 5}, "chatId"},
		{map[string]any{"type": "ONE_TO_ONE_CHAT", "to": strings.Repeat("b", 129), "content": "x"}, "Invalid to"},
	} {
		alice1.Send(tc.msg)
		chattest.ExpectError(t, alice1, tc.want)
	}
}

func TestGroups(t *testing.T) {
	t.Parallel()
	e := chattest.Start(t, nil)
	alice := e.Login(t, "/chat", "alice")
	alice2 := e.Login(t, "/chat", "alice")
	bob := e.Login(t, "/chat", "bob")
	carol := e.Login(t, "/chat", "carol")

	alice.Send(map[string]any{"type": "GROUP_CHAT", "from": "alice", "groupId": "g1", "content": "anyone?"})
	chattest.ExpectError(t, alice, "Not a member of group g1")

	chattest.Join(t, alice, "alice", "g1")
	chattest.Join(t, bob, "bob", "g1")
	for _, c := range []*testutil.Client{alice, alice2} {
		if m := c.Expect("INFO"); m.Str("msg") != "bob joined group g1" {
			t.Fatalf("INFO %v", m)
		}
	}
	alice.Send(map[string]any{"type": "JOIN_GROUP", "groupId": "g1", "username": "alice"})
	chattest.ExpectError(t, alice, "Already a member of group g1")
	alice.Send(map[string]any{"type": "JOIN_GROUP", "groupId": "g1", "username": "bob"})
	chattest.ExpectError(t, alice, "username must be the authenticated user")
	carol.Send(map[string]any{"type": "LEAVE_GROUP", "groupId": "g1", "username": "carol"})
	chattest.ExpectError(t, carol, "Not a member of group g1")

	alice.Send(map[string]any{"type": "GROUP_CHAT", "from": "alice", "groupId": "g1", "content": "hello group"})
	id := chattest.ExpectSuccess(t, alice, "Message sent").Str("messageId")
	want := map[string]string{"type": "GROUP_CHAT", "from": "alice", "groupId": "g1", "content": "hello group"}
	checkDelivered(t, bob.Read(), want, id)
	checkDelivered(t, alice2.Read(), want, id)
	carol.Send(map[string]any{"type": "GROUP_CHAT", "from": "carol", "groupId": "g1", "content": "let me in"})
	chattest.ExpectError(t, carol, "Not a member of group g1")
	carol.Send(map[string]any{"type": "GET_GROUP_CHAT_HISTORY", "groupId": "g1"})
	chattest.ExpectError(t, carol, "Not a member of group g1")

	// A new member sees the whole history.
	chattest.Join(t, carol, "carol", "g1")
	for _, c := range []*testutil.Client{alice, alice2, bob} {
		if m := c.Expect("INFO"); m.Str("msg") != "carol joined group g1" {
			t.Fatalf("INFO %v", m)
		}
	}
	carol.Send(map[string]any{"type": "GET_GROUP_CHAT_HISTORY", "groupId": "g1"})
	h := carol.Expect("GROUP_CHAT_HISTORY")
	msgs := h["messages"].([]any)
	if h.Str("groupId") != "g1" || len(msgs) != 1 || h["hasMore"] != false {
		t.Fatalf("history %v", h)
	}
	checkDelivered(t, testutil.Msg(msgs[0].(map[string]any)), want, id)

	bob.Send(map[string]any{"type": "LEAVE_GROUP", "groupId": "g1", "username": "bob"})
	chattest.ExpectSuccess(t, bob, "Left group g1")
	for _, c := range []*testutil.Client{alice, alice2, carol} {
		if m := c.Expect("INFO"); m.Str("msg") != "bob left group g1" {
			t.Fatalf("INFO %v", m)
		}
	}
	carol.Send(map[string]any{"type": "GROUP_CHAT", "groupId": "g1", "content": "bye bob"})
	chattest.ExpectSuccess(t, carol, "Message sent")
	alice.Expect("GROUP_CHAT")
	alice2.Expect("GROUP_CHAT")
	bob.Send(`{"type":"NOPE"}`) // bob left: his next message is the error, not the group chat
	chattest.ExpectError(t, bob, "Unknown message type")
}

// history asks for a page and returns its messages' contents and hasMore.
func history(t *testing.T, c *testutil.Client, req map[string]any) ([]string, []string, bool) {
	t.Helper()
	c.Send(req)
	m := c.Read()
	typ := "GROUP_CHAT_HISTORY"
	if req["type"] == "GET_ONE_TO_ONE_HISTORY" {
		typ = "ONE_TO_ONE_CHAT_HISTORY"
	}
	if m.Str("type") != typ {
		t.Fatalf("got %v, want %s", m, typ)
	}
	var contents, ids []string
	for _, x := range m["messages"].([]any) {
		mm := x.(map[string]any)
		contents = append(contents, mm["content"].(string))
		ids = append(ids, mm["messageId"].(string))
	}
	return contents, ids, m["hasMore"].(bool)
}

func TestHistoryPaging(t *testing.T) {
	t.Parallel()
	e := chattest.Start(t, nil)
	alice := e.Login(t, "/chat", "alice")
	bob := e.Login(t, "/chat", "bob")
	carol := e.Login(t, "/chat", "carol")
	const n = 205
	// Pipelined: the connection serves them in order, each acked when durable.
	for i := range n {
		alice.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "bob", "content": fmt.Sprint(i), "chatId": "ab"})
	}
	var ids []string
	for range n {
		ids = append(ids, chattest.ExpectSuccess(t, alice, "Message sent").Str("messageId"))
		bob.Expect("ONE_TO_ONE_CHAT")
	}
	req := func(extra map[string]any) map[string]any {
		r := map[string]any{"type": "GET_ONE_TO_ONE_HISTORY", "from": "bob", "to": "alice", "chatId": "ab"}
		for k, v := range extra {
			r[k] = v
		}
		return r
	}
	c, got, more := history(t, bob, req(nil))
	if len(c) != 50 || c[0] != "155" || c[49] != "204" || !more || got[49] != ids[204] {
		t.Fatalf("default page: %d messages %v..., hasMore %v", len(c), c[:1], more)
	}
	c, _, more = history(t, bob, req(map[string]any{"limit": 1000}))
	if len(c) != 200 || c[0] != "5" || !more {
		t.Fatalf("clamped page: %d messages from %v, hasMore %v", len(c), c[:1], more)
	}
	c, _, more = history(t, alice, req(map[string]any{"limit": 3, "before": ids[5]}))
	if strings.Join(c, ",") != "2,3,4" || !more {
		t.Fatalf("page before #5: %v hasMore %v", c, more)
	}
	c, _, more = history(t, alice, req(map[string]any{"limit": 3, "before": ids[2]}))
	if strings.Join(c, ",") != "0,1" || more {
		t.Fatalf("last page: %v hasMore %v", c, more)
	}
	// Walk the whole conversation back with before.
	var all []string
	before := ""
	for {
		r := req(map[string]any{"limit": 64})
		if before != "" {
			r["before"] = before
		}
		c, got, more := history(t, bob, r)
		all = append(c, all...)
		if !more {
			break
		}
		before = got[0]
	}
	if len(all) != n || all[0] != "0" || all[n-1] != "204" {
		t.Fatalf("walked %d messages", len(all))
	}

	bob.Send(req(map[string]any{"before": "0000000000001"}))
	chattest.ExpectError(t, bob, "Unknown message in before: 0000000000001")
	bob.Send(req(map[string]any{"before": "junk"}))
	chattest.ExpectError(t, bob, "Unknown message in before")
	bob.Send(req(map[string]any{"limit": 0}))
	chattest.ExpectError(t, bob, "Invalid limit")
	bob.Send(req(map[string]any{"limit": "5"}))
	chattest.ExpectError(t, bob, "Invalid limit")
	carol.Send(req(nil))
	chattest.ExpectError(t, carol, "Not a participant")
	// The same conversation whichever way round it is named.
	c, _, _ = history(t, alice, map[string]any{"type": "GET_ONE_TO_ONE_HISTORY", "to": "bob", "limit": 1})
	if len(c) != 1 || c[0] != "204" {
		t.Fatalf("alice->bob page %v", c)
	}
	// A before from another conversation is unknown here.
	carol.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "to": "alice", "content": "x"})
	other := chattest.ExpectSuccess(t, carol, "Message sent").Str("messageId")
	bob.Send(req(map[string]any{"before": other}))
	chattest.ExpectError(t, bob, "Unknown message in before")
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	e := chattest.Start(t, nil)
	c := e.Login(t, "/chat", "alice")
	for _, tc := range []struct{ send, want string }{
		{`{not json`, "Invalid JSON"},
		{`[1,2]`, "JSON object"},
		{`{"type":7}`, "Missing or invalid type"},
		{`{"content":"x"}`, "Missing or invalid type"},
		{`{"type":"WHAT"}`, "Unknown message type: WHAT"},
		{`{"type":"JOIN_GROUP"}`, "Missing groupId"},
		{`{"type":"GET_GROUP_CHAT_HISTORY","groupId":"g","limit":-1}`, "Invalid limit"},
	} {
		c.Send(tc.send)
		chattest.ExpectError(t, c, tc.want)
	}
	if err := c.Conn.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"AUTH"}`)); err != nil {
		t.Fatal(err)
	}
	chattest.ExpectError(t, c, "Binary frames are not supported")
	c.Send(`{"type":"DISCONNECT"}`)
	c.ExpectClose(1000)
}

// TestRestart: history and membership survive a graceful restart on the
// same data directory (which also proves the store was closed: Pebble
// locks its directory).
func TestRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := func() server.Config {
		c := server.Defaults()
		c.Listeners = []server.Listener{{Addr: "127.0.0.1:0"}}
		c.HTTPAddr = ""
		c.Drain, c.CloseWait = 100*time.Millisecond, 100*time.Millisecond
		c.Logger = chattest.Quiet
		c.DataDir = dir
		c.JWT.Secret = chattest.Secret
		return c
	}
	s, stop := chattest.Run(t, cfg())
	e := &chattest.Env{T: t, Srv: s}
	alice := e.Login(t, "/chat", "alice")
	chattest.Join(t, alice, "alice", "g")
	alice.Send(map[string]any{"type": "GROUP_CHAT", "groupId": "g", "content": "kept"})
	id := chattest.ExpectSuccess(t, alice, "Message sent").Str("messageId")
	stop()

	s, _ = chattest.Run(t, cfg())
	e = &chattest.Env{T: t, Srv: s}
	alice = e.Login(t, "/chat", "alice")
	c, ids, _ := history(t, alice, map[string]any{"type": "GET_GROUP_CHAT_HISTORY", "groupId": "g"})
	if len(c) != 1 || c[0] != "kept" || ids[0] != id {
		t.Fatalf("after restart: %v %v", c, ids)
	}
	alice.Send(map[string]any{"type": "JOIN_GROUP", "groupId": "g", "username": "alice"})
	chattest.ExpectError(t, alice, "Already a member")
	alice.Send(map[string]any{"type": "GROUP_CHAT", "groupId": "g", "content": "later"})
	if id2 := chattest.ExpectSuccess(t, alice, "Message sent").Str("messageId"); id2 <= id {
		t.Fatalf("id after restart %q <= %q", id2, id)
	}
}
