// Package testutil starts real partyline servers on port 0 for tests and
// gives them a WebSocket client that is not ours (gorilla/websocket).
package testutil

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"partyline/assemble"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/server"
)

// Start runs a server on 127.0.0.1:0 (WebSocket and HTTP) with the
// defaults changed by mutate, and stops it when the test ends.
func Start(t testing.TB, mutate func(*server.Config)) *server.Server {
	t.Helper()
	s, _ := StartStoppable(t, mutate)
	return s
}

// StartStoppable is Start with a function that shuts the server down
// gracefully (SIGTERM's path: drain, then stop) and waits for it; calling
// it again, or the test's cleanup after it, does nothing more.
func StartStoppable(t testing.TB, mutate func(*server.Config)) (*server.Server, func()) {
	t.Helper()
	cfg := Config(t)
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := assemble.New(cfg)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("server.Run: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("server not ready after 10s")
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("server.Run returned %v", err)
				}
			case <-time.After(15 * time.Second):
				t.Error("server did not stop within 15s")
			}
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// Config is the configuration Start begins from: loopback listeners on
// port 0, short drain and close waits, a data directory of the test's own,
// logs to the test's log with -v.
func Config(t testing.TB) server.Config {
	cfg := server.Defaults()
	cfg.Listeners = []server.Listener{{Addr: "127.0.0.1:0"}}
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.Drain = 200 * time.Millisecond
	cfg.CloseWait = 200 * time.Millisecond
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.DataDir = t.TempDir() // each server its own store (removed after the server stops)
	if testing.Verbose() {
		cfg.Logger = slog.New(slog.NewTextHandler(&tlog{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return cfg
}

type tlog struct{ t testing.TB }

func (l *tlog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// URL is the ws:// URL of listener i with path.
func URL(s *server.Server, i int, path string) string {
	return "ws://" + s.Addrs()[i].String() + path
}

// HTTPURL is the http:// URL of the HTTP listener with path.
func HTTPURL(s *server.Server, path string) string {
	return "http://" + s.HTTPAddr().String() + path
}

// Client is a test WebSocket client.
type Client struct {
	t    testing.TB
	Conn *websocket.Conn
}

// Dial connects to url or fails the test.
func Dial(t testing.TB, url string) *Client {
	t.Helper()
	c, err := TryDial(t, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	return c
}

// TryDial connects with extra headers; the response is in the error.
func TryDial(t testing.TB, url string, h http.Header) (*Client, error) {
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second}
	conn, resp, err := d.Dial(url, h)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (HTTP %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	c := &Client{t: t, Conn: conn}
	t.Cleanup(func() { conn.Close() })
	return c, nil
}

// Send writes v as a JSON text message.
func (c *Client) Send(v any) {
	c.t.Helper()
	b, ok := v.([]byte)
	if !ok {
		if s, isStr := v.(string); isStr {
			b = []byte(s)
		} else {
			var err error
			if b, err = json.Marshal(v); err != nil {
				c.t.Fatalf("marshal: %v", err)
			}
		}
	}
	c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.Conn.WriteMessage(websocket.TextMessage, b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// Msg is a decoded JSON message.
type Msg map[string]any

// Str returns field k as a string ("" if absent).
func (m Msg) Str(k string) string { s, _ := m[k].(string); return s }

// Read returns the next message, failing the test after 5 s.
func (c *Client) Read() Msg {
	c.t.Helper()
	m, err := c.TryRead(5 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return m
}

// TryRead returns the next message or the read error.
func (c *Client) TryRead(d time.Duration) (Msg, error) {
	c.Conn.SetReadDeadline(time.Now().Add(d))
	_, b, err := c.Conn.ReadMessage()
	if err != nil {
		return nil, err
	}
	var m Msg
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("not JSON: %q: %w", b, err)
	}
	return m, nil
}

// Expect reads the next message and checks its type.
func (c *Client) Expect(typ string) Msg {
	c.t.Helper()
	m := c.Read()
	if m.Str("type") != typ {
		c.t.Fatalf("got %v, want type %q", m, typ)
	}
	return m
}

// ExpectClose reads until the connection closes and checks the close code.
func (c *Client) ExpectClose(code int) {
	c.t.Helper()
	for {
		c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := c.Conn.ReadMessage()
		if err == nil {
			c.t.Logf("message before close: %s", b)
			continue
		}
		ce, ok := err.(*websocket.CloseError)
		if !ok {
			c.t.Fatalf("want close %d, got %v", code, err)
		}
		if ce.Code != code {
			c.t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, code)
		}
		return
	}
}

// ExpectSilence checks that nothing arrives within d.
func (c *Client) ExpectSilence(d time.Duration) {
	c.t.Helper()
	if m, err := c.TryRead(d); err == nil {
		c.t.Fatalf("unexpected message %v", m)
	}
}

// Eventually polls cond every 10 ms for up to 5 s and fails the test if it
// never holds.
func Eventually(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
