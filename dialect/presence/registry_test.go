package presence

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"partyline/routing"
)

// sink is a routing.Sender that keeps what it is sent.
type sink struct {
	mu   sync.Mutex
	msgs []map[string]string
}

func (s *sink) Send(f *routing.Frame, _ bool) bool {
	b := f.Bytes()
	var m map[string]string
	// Skip the frame header: the payload is the JSON object.
	for i := range b {
		if b[i] == '{' {
			_ = json.Unmarshal(b[i:], &m)
			break
		}
	}
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	return true
}

func (s *sink) count(status string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, m := range s.msgs {
		if m["status"] == status {
			n++
		}
	}
	return n
}

func waitFor(t *testing.T, what string, cond func() bool, info ...func() string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, f := range info {
				t.Log(f())
			}
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// clock is the registry's time in a test: it moves only when told. It
// starts an hour ahead of the real clock, so that the notifier's real
// timer (set to the next deadline) never fires during a test: the test
// drives the notifier with settle.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func fakeClock(r *Registry) *clock {
	c := &clock{t: time.Now().Add(time.Hour)}
	r.now = c.now // before the first event: the notifier is not running yet
	return c
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// settle moves the clock by d and returns once the notifier has applied
// every grace deadline due by then and published the updates: a job
// queued now runs after them.
func (c *clock) settle(t *testing.T, r *Registry, d time.Duration) {
	t.Helper()
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
	done := make(chan struct{})
	if !r.queue(func() { close(done) }) {
		t.Fatal("registry job queue full")
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the notifier did not run")
	}
}

// TestRegistryGrace: many users flapping at once; only those that stay
// away past the grace period go offline, once each.
func TestRegistryGrace(t *testing.T) {
	const n, grace = 200, 100 * time.Millisecond
	r := NewRegistry(grace, func(u string) ([]string, error) {
		if u == "watcher" {
			return nil, nil // the watcher's own contacts: none, so no initial statuses
		}
		return []string{"watcher"}, nil
	},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer r.Close()
	clk := fakeClock(r)
	s := &sink{}
	if _, ok := r.Watch("watcher", s, "1"); !ok {
		t.Fatal("watch refused")
	}
	user := func(i int) string { return fmt.Sprintf("u%03d", i) }
	for i := range n {
		r.Connect(user(i))
		r.Connect(user(i)) // two connections each
	}
	waitFor(t, "online updates", func() bool { return s.count("online") == n })
	for i := range n {
		r.Disconnect(user(i))
		r.Disconnect(user(i))
		r.Disconnect(user(i)) // one too many: ignored
	}
	for i := 0; i < n; i += 2 { // the even ones come back within the grace period
		r.Connect(user(i))
	}
	clk.settle(t, r, grace-time.Millisecond)
	if got := s.count("offline"); got != 0 {
		t.Fatalf("%d offline updates before the grace period ended", got)
	}
	clk.settle(t, r, time.Millisecond)
	if got := s.count("offline"); got != n/2 {
		t.Fatalf("%d offline updates once the grace period ended, want %d", got, n/2)
	}
	clk.settle(t, r, 2*grace)
	if got := s.count("offline"); got != n/2 {
		t.Fatalf("%d offline updates, want %d", got, n/2)
	}
	if got := s.count("online"); got != n {
		t.Fatalf("%d online updates, want %d (a reconnect inside the grace period flapped)", got, n)
	}
	if got := r.Online(); got != n/2 {
		t.Fatalf("%d online, want %d", got, n/2)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range s.msgs[n:] {
		var i int
		fmt.Sscanf(m["username"], "u%d", &i)
		if i%2 == 0 {
			t.Fatalf("%s went offline but reconnected in time", m["username"])
		}
	}
}

// TestRegistryRemote: connections on other nodes (SetRemote) count like
// local ones: a user online only elsewhere is online, local and remote
// connections overlap without flapping, and the user goes offline once,
// the grace period after the last connection anywhere is gone.
func TestRegistryRemote(t *testing.T) {
	const grace = 80 * time.Millisecond
	r := NewRegistry(grace, func(u string) ([]string, error) {
		if u == "watcher" {
			return nil, nil
		}
		return []string{"watcher"}, nil
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer r.Close()
	clk := fakeClock(r)
	var locals []string
	var mu sync.Mutex
	r.OnLocal = func(u string) { mu.Lock(); locals = append(locals, u); mu.Unlock() }
	s := &sink{}
	if _, ok := r.Watch("watcher", s, "1"); !ok {
		t.Fatal("watch refused")
	}
	r.SetRemote("ann", 0) // unknown and zero: nothing
	r.SetRemote("ann", 2) // online on another node only
	waitFor(t, "ann online", func() bool { return s.count("online") == 1 })
	if on, _ := r.Status("ann"); !on || r.Local("ann") != 0 {
		t.Fatalf("ann: status %v, local %d", on, r.Local("ann"))
	}
	r.Connect("ann")      // and here too
	r.SetRemote("ann", 0) // the other node's connections are gone
	r.Disconnect("ann")   // the last one anywhere: grace starts
	r.SetRemote("ann", 1) // back elsewhere within the grace period
	clk.settle(t, r, 2*grace)
	if s.count("offline") != 0 || s.count("online") != 1 {
		t.Fatalf("flapped: %v", s.msgs)
	}
	r.SetRemote("ann", 0) // e.g. its node died and was reaped
	clk.settle(t, r, grace)
	if s.count("offline") != 1 {
		t.Fatalf("not offline once the grace period ended: %v", s.msgs)
	}
	if got := r.Online(); got != 0 {
		t.Fatalf("%d online, want 0", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(locals) != 2 || locals[0] != "ann" || locals[1] != "ann" {
		t.Fatalf("OnLocal calls %v, want one per local change", locals)
	}
}
