// Package chattest runs servers with the chat and presence dialects for
// tests and logs users in over real sockets.
package chattest

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"partyline/assemble"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"partyline/auth/authtest"
	"partyline/internal/testutil"
	"partyline/server"
)

// Secret is the HMAC secret of servers started by Start.
const Secret = "chattest-secret-0123456789abcdef"

// Env is one running server.
type Env struct {
	T   testing.TB
	Srv *server.Server
}

// Start runs a server whose tokens are HS256 with Secret (mutate may
// change that) and short timeouts suited to tests.
func Start(t testing.TB, mutate func(*server.Config)) *Env {
	t.Helper()
	s := testutil.Start(t, func(c *server.Config) {
		c.JWT.Secret = Secret
		c.Presence.Grace = 200 * time.Millisecond
		if mutate != nil {
			mutate(c)
		}
	})
	return &Env{T: t, Srv: s}
}

// Token is an HS256 token for user valid for ttl.
func Token(t testing.TB, user string, ttl time.Duration) string {
	return authtest.Sign(t, jwt.SigningMethodHS256, []byte(Secret), authtest.Claims(user, ttl), "")
}

// URL is the ws:// URL of path on the server.
func (e *Env) URL(path string) string { return testutil.URL(e.Srv, 0, path) }

// Dial connects to path ("/chat" or "/presence") without authenticating;
// the client fails t.
func (e *Env) Dial(t testing.TB, path string) *testutil.Client {
	t.Helper()
	return testutil.Dial(t, e.URL(path))
}

// Login dials path and authenticates as user with an AUTH message.
func (e *Env) Login(t testing.TB, path, user string) *testutil.Client {
	t.Helper()
	return e.LoginWith(t, path, user, Token(t, user, time.Hour))
}

// LoginWith dials path and sends AUTH with tok, expecting success as user.
func (e *Env) LoginWith(t testing.TB, path, user, tok string) *testutil.Client {
	t.Helper()
	c := e.Dial(t, path)
	c.Send(map[string]any{"type": "AUTH", "token": tok})
	ExpectSuccess(t, c, "Authenticated as "+user)
	return c
}

// ExpectSuccess reads a SUCCESS whose msg contains want.
func ExpectSuccess(t testing.TB, c *testutil.Client, want string) testutil.Msg {
	t.Helper()
	m := c.Read()
	if m.Str("type") != "SUCCESS" || !strings.Contains(m.Str("msg"), want) {
		t.Fatalf("got %v, want SUCCESS %q", m, want)
	}
	return m
}

// ExpectError reads an ERROR whose msg contains want (case-insensitive).
func ExpectError(t testing.TB, c *testutil.Client, want string) testutil.Msg {
	t.Helper()
	m := c.Read()
	if m.Str("type") != "ERROR" || !strings.Contains(strings.ToLower(m.Str("msg")), strings.ToLower(want)) {
		t.Fatalf("got %v, want ERROR mentioning %q", m, want)
	}
	return m
}

// Join sends JOIN_GROUP from c (user) and expects SUCCESS.
func Join(t testing.TB, c *testutil.Client, user, group string) {
	t.Helper()
	c.Send(map[string]any{"type": "JOIN_GROUP", "groupId": group, "username": user})
	ExpectSuccess(t, c, "Joined group "+group)
}

// DialHeader dials path with extra handshake headers.
func (e *Env) DialHeader(t testing.TB, path string, h http.Header) (*testutil.Client, error) {
	return testutil.TryDial(t, e.URL(path), h)
}

// Quiet is a logger that drops everything.
var Quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// Run runs a server with cfg until the returned stop is called; stop
// waits for a graceful shutdown and fails the test if it errs.
func Run(t testing.TB, cfg server.Config) (*server.Server, func()) {
	t.Helper()
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
	}
	stopped := false
	stop := func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("server.Run: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("server did not stop")
		}
	}
	t.Cleanup(stop)
	return s, stop
}

// Stream reads a client's messages on a goroutine, so that a test can wait
// for a message or for silence and still read afterwards.
type Stream struct {
	t  testing.TB
	ch chan testutil.Msg
}

// NewStream starts reading c; c must not be read directly afterwards.
func NewStream(t testing.TB, c *testutil.Client) *Stream {
	s := &Stream{t: t, ch: make(chan testutil.Msg, 1024)}
	go func() {
		defer close(s.ch)
		for {
			m, err := c.TryRead(time.Hour)
			if err != nil {
				return
			}
			s.ch <- m
		}
	}()
	return s
}

// Next returns the next message, failing the test after 5 s or when the
// connection ends.
func (s *Stream) Next() testutil.Msg {
	s.t.Helper()
	select {
	case m, ok := <-s.ch:
		if !ok {
			s.t.Fatal("connection ended")
		}
		return m
	case <-time.After(5 * time.Second):
		s.t.Fatal("no message within 5s")
	}
	return nil
}

// Silence fails the test if a message arrives within d.
func (s *Stream) Silence(d time.Duration) {
	s.t.Helper()
	select {
	case m, ok := <-s.ch:
		if ok {
			s.t.Fatalf("unexpected message %v", m)
		}
	case <-time.After(d):
	}
}
