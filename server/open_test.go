package server_test

import (
	"sync/atomic"
	"testing"
	"time"

	"partyline/dialect"
	"partyline/internal/testutil"
	"partyline/server"
)

// slowOpen is a test dialect whose Open takes a while and then counts the
// connection as registered.
type slowOpen struct{ opened atomic.Int32 }

func (d *slowOpen) Name() string                  { return "slowopen" }
func (d *slowOpen) Accept(*dialect.Request) error { return nil }
func (d *slowOpen) Open(c dialect.Conn) dialect.Session {
	time.Sleep(50 * time.Millisecond) // e.g. joining shared lists under contention
	d.opened.Add(1)
	return &echoSess{c}
}

// When a client sees its handshake succeed, the dialect's Open has run: a
// broadcast sent right after the client's open event reaches it (a
// notify broadcast raced a fresh connection before the 101 waited for
// Open).
func TestOpenRunsBeforeThe101(t *testing.T) {
	d := &slowOpen{}
	s := testutil.Start(t, func(c *server.Config) { c.Extra = []dialect.Dialect{d} })
	for i := range 3 {
		testutil.Dial(t, testutil.URL(s, 0, "/slowopen"))
		if got := d.opened.Load(); got != int32(i+1) {
			t.Fatalf("handshake %d complete, but %d sessions opened", i+1, got)
		}
	}
}
