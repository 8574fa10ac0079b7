package server_test

import (
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"partyline/codec"
	"partyline/dialect"
	"partyline/internal/testutil"
	"partyline/server"
)

// slowAuth is a test dialect whose Accept defers to a blocking check that
// admits the query "?ok" and echoes messages back.
type slowAuth struct {
	checks atomic.Int32
	gate   chan struct{}
}

func (d *slowAuth) Name() string { return "slowauth" }
func (d *slowAuth) Accept(r *dialect.Request) error {
	ok := r.RawQuery == "ok"
	return dialect.DeferValue(func() (any, error) {
		d.checks.Add(1)
		<-d.gate
		if !ok {
			return nil, dialect.Refuse(401, "bad token")
		}
		return "verified", nil
	})
}

// Open greets with the check's value, then echoes.
func (d *slowAuth) Open(c dialect.Conn) dialect.Session {
	c.SendText([]byte(`{"accepted":"` + c.Request().Accepted.(string) + `"}`))
	return &echoSess{c}
}

type echoSess struct{ c dialect.Conn }

func (e *echoSess) OnMessage(_ codec.Kind, p []byte) { e.c.SendText(p) }
func (e *echoSess) OnTimer(time.Time)                {}
func (e *echoSess) OnClose()                         {}

func TestDeferredAccept(t *testing.T) {
	d := &slowAuth{gate: make(chan struct{})}
	close(d.gate)
	s := testutil.Start(t, func(c *server.Config) { c.Extra = []dialect.Dialect{d} })

	t.Run("accepted", func(t *testing.T) {
		c := testutil.Dial(t, testutil.URL(s, 0, "/slowauth?ok"))
		if m := c.Read(); m.Str("accepted") != "verified" {
			t.Fatalf("greeting %v: the check's value did not reach Open", m)
		}
		c.Send(`{"hello":1}`)
		if m := c.Read(); m["hello"] != float64(1) {
			t.Fatalf("echo: %v", m)
		}
	})
	t.Run("refused with the check's status", func(t *testing.T) {
		_, err := testutil.TryDial(t, testutil.URL(s, 0, "/slowauth?no"), nil)
		if err == nil || !strings.Contains(err.Error(), "HTTP 401") {
			t.Fatalf("want HTTP 401, got %v", err)
		}
	})
}

// TestDeferredAcceptKeepsEarlyFrames: frames sent before the decision wait
// in the buffer and are handled after the upgrade completes.
func TestDeferredAcceptKeepsEarlyFrames(t *testing.T) {
	d := &slowAuth{gate: make(chan struct{})}
	s := testutil.Start(t, func(c *server.Config) { c.Extra = []dialect.Dialect{d} })
	done := make(chan *testutil.Client, 1)
	errc := make(chan error, 1)
	go func() {
		c, err := testutil.TryDial(t, testutil.URL(s, 0, "/slowauth?ok"), nil)
		if err != nil {
			errc <- err
			return
		}
		done <- c
	}()
	deadline := time.Now().Add(5 * time.Second)
	for d.checks.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("check never ran")
		}
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case <-done:
		t.Fatal("handshake completed before the check returned")
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(100 * time.Millisecond):
	}
	close(d.gate)
	select {
	case c := <-done:
		c.Read() // greeting
		c.Send(`{"n":2}`)
		if m := c.Read(); m["n"] != float64(2) {
			t.Fatalf("echo: %v", m)
		}
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(5 * time.Second):
		t.Fatal("handshake did not complete")
	}
}
