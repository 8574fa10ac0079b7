package chat_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/dialect/chat/chattest"
)

// freePort returns a loopback port that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startBinary runs the built server on a free port with dataDir and
// returns the process and its /chat URL once it accepts connections.
func startBinary(t *testing.T, bin, dataDir string) (*exec.Cmd, string) {
	t.Helper()
	port := freePort(t)
	cmd := exec.Command(bin, "--listen", fmt.Sprintf("127.0.0.1:%d", port), "--http", "",
		"--data-dir", dataDir, "--jwt-secret", chattest.Secret, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	url := fmt.Sprintf("ws://127.0.0.1:%d/chat", port)
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err == nil {
			c.Close()
			return cmd, url
		}
		if time.Now().After(deadline) {
			t.Fatalf("server not accepting: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type acked struct{ id, content string }

// TestCrashDurability builds the binary, has clients send pipelined
// messages, kills the server with SIGKILL mid-stream, restarts it on the
// same data directory and checks that every acknowledged message is in
// history exactly once, under the acknowledged messageId.
func TestCrashDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "partyline")
	build := exec.Command("go", "build", "-o", bin, "partyline")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dataDir := t.TempDir()
	cmd, url := startBinary(t, bin, dataDir)
	e := &chattest.Env{T: t}

	const clients, window = 4, 32
	users := make([]string, clients)
	conns := make([]*websocket.Conn, clients)
	for i := range users {
		users[i] = fmt.Sprintf("u%d", i)
		c := login(t, e, url, users[i])
		c.WriteJSON(map[string]any{"type": "JOIN_GROUP", "groupId": "crash", "username": users[i]})
		conns[i] = c
	}
	var total atomic.Int64
	var mu sync.Mutex
	acks := map[string][]acked{} // conversation -> acked messages
	var wg sync.WaitGroup
	for i, c := range conns {
		sent := make(chan [2]string, 4096) // conversation, content of each message, in send order
		slots := make(chan struct{}, window)
		done := make(chan struct{})
		wg.Add(2)
		go func() { // reader: the k-th "Message sent" acks the k-th message sent
			defer wg.Done()
			defer close(done)
			joined := false
			for {
				var m map[string]any
				if err := c.ReadJSON(&m); err != nil {
					return
				}
				if m["type"] == "SUCCESS" && m["msg"] == "Joined group crash" {
					joined = true
					continue
				}
				if m["type"] == "ERROR" {
					t.Errorf("%s: %v", users[i], m)
					return
				}
				if m["type"] != "SUCCESS" || m["msg"] != "Message sent" || !joined {
					continue
				}
				s := <-sent
				mu.Lock()
				acks[s[0]] = append(acks[s[0]], acked{m["messageId"].(string), s[1]})
				mu.Unlock()
				total.Add(1)
				<-slots
			}
		}()
		go func() { // writer: pipelined, at most window unacknowledged
			defer wg.Done()
			peer := users[(i+1)%clients]
			for k := 0; k < 100000; k++ {
				select {
				case slots <- struct{}{}:
				case <-done:
					return
				}
				content := fmt.Sprintf("%s-%d", users[i], k)
				msg := map[string]any{"type": "GROUP_CHAT", "groupId": "crash", "content": content}
				conv := "group"
				if k%2 == 1 {
					msg = map[string]any{"type": "ONE_TO_ONE_CHAT", "to": peer, "content": content}
					conv = users[i] + ">" + peer
				}
				sent <- [2]string{conv, content}
				if c.WriteJSON(msg) != nil {
					return
				}
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for total.Load() < 400 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL, mid-stream
		t.Fatal(err)
	}
	_ = cmd.Wait()
	for _, c := range conns {
		c.Close()
	}
	wg.Wait()
	t.Logf("%d messages acknowledged before SIGKILL", total.Load())
	if total.Load() < 50 {
		t.Fatalf("only %d acknowledged", total.Load())
	}

	_, url = startBinary(t, bin, dataDir)
	reader := login(t, e, url, "u0")
	for conv, want := range acks {
		req := map[string]any{"type": "GET_GROUP_CHAT_HISTORY", "groupId": "crash"}
		if conv != "group" {
			from, to := conv[:2], conv[3:]
			req = map[string]any{"type": "GET_ONE_TO_ONE_HISTORY", "from": from, "to": to}
			if from != "u0" && to != "u0" {
				reader2 := login(t, e, url, from)
				checkHistory(t, reader2, req, conv, want)
				continue
			}
		}
		checkHistory(t, reader, req, conv, want)
	}
}

func login(t *testing.T, e *chattest.Env, url, user string) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.WriteJSON(map[string]any{"type": "AUTH", "token": chattest.Token(t, user, time.Hour)})
	var m map[string]any
	if err := c.ReadJSON(&m); err != nil || m["type"] != "SUCCESS" {
		t.Fatalf("login %s: %v %v", user, m, err)
	}
	return c
}

// checkHistory pages through a conversation and checks that each acked
// message is there exactly once with its acknowledged id, and that no id
// or content appears twice.
func checkHistory(t *testing.T, c *websocket.Conn, req map[string]any, conv string, want []acked) {
	t.Helper()
	ids := map[string]string{}    // id -> content
	byContent := map[string]int{} // content -> count
	before := ""
	for {
		req["limit"] = 200
		if before != "" {
			req["before"] = before
		}
		c.WriteJSON(req)
		var m struct {
			Type     string
			Messages []struct{ MessageID, Content string }
			HasMore  bool
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if err := c.ReadJSON(&m); err != nil || m.Type == "ERROR" || m.Type == "" {
			t.Fatalf("%s history: %+v %v", conv, m, err)
		}
		for _, x := range m.Messages {
			if _, dup := ids[x.MessageID]; dup {
				t.Fatalf("%s: messageId %s twice", conv, x.MessageID)
			}
			ids[x.MessageID] = x.Content
			byContent[x.Content]++
		}
		if !m.HasMore {
			break
		}
		before = m.Messages[0].MessageID
	}
	for _, a := range want {
		if got, ok := ids[a.id]; !ok || got != a.content {
			t.Fatalf("%s: acknowledged %s (%q) missing after the crash (found %q)", conv, a.id, a.content, got)
		}
		if byContent[a.content] != 1 {
			t.Fatalf("%s: %q stored %d times", conv, a.content, byContent[a.content])
		}
	}
	t.Logf("%s: %d acknowledged, %d in history", conv, len(want), len(ids))
}
