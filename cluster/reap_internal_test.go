package cluster

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A reaper that fails is run again on the clean-up queue until it
// succeeds. A run again asks anew who is gone: the dead node restarted
// meanwhile (a new incarnation, its lease renewed), so its new entries are
// no longer held, its old ones still are.
func TestReaperRunAgainUntilDone(t *testing.T) {
	e := startEmbedded(t)
	cfg := func(id string) Config { return Config{URL: e.url(), NodeID: id, Lease: 2 * time.Second} }
	a := New(cfg("a"))
	type run struct{ old, cur bool } // g.Holds of b's first and second incarnation
	var (
		mu       sync.Mutex
		runs     []run
		old, cur string // b's Member strings
	)
	first, resume := make(chan struct{}), make(chan struct{})
	a.OnNodeDead(func(g Gone) error {
		if g.node != "b" {
			return nil // a's start-up sweep
		}
		mu.Lock()
		n := len(runs)
		mu.Unlock()
		if n == 0 { // b restarts while the first run is on
			close(first)
			select {
			case <-resume:
			case <-time.After(20 * time.Second):
			}
		}
		mu.Lock()
		defer mu.Unlock()
		runs = append(runs, run{g.Holds(old), g.Holds(cur)})
		if len(runs) <= 2 {
			return errors.New("test: not this time")
		}
		return nil
	})
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })

	b := startNode(t, cfg("b"))
	mu.Lock()
	old = b.Member()
	mu.Unlock()
	waitFor(t, 10*time.Second, "a sees b", func() bool { return slices.Contains(a.Alive(), "b") })
	_ = b.Stop() // deletes its lease: a reaps it at once
	select {
	case <-first:
	case <-time.After(10 * time.Second):
		t.Fatal("a did not reap b")
	}
	b2 := startNode(t, cfg("b"))
	mu.Lock()
	cur = b2.Member()
	mu.Unlock()
	waitFor(t, 10*time.Second, "a sees b again", func() bool { return slices.Contains(a.Alive(), "b") })
	close(resume)

	waitFor(t, 20*time.Second, "the reaper run until it succeeded", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(runs) == 3 && a.Metrics().CleanupQueued == 0
	})
	want := []run{{true, true}, {true, false}, {true, false}}
	mu.Lock()
	got := slices.Clone(runs)
	mu.Unlock()
	if !slices.Equal(got, want) {
		t.Fatalf("runs (holds old, holds new incarnation) = %v, want %v", got, want)
	}
	if m := a.Metrics(); m.CleanupRetried != 1 || m.DroppedBy != ([len(DropReasons)]int64{}) {
		t.Fatalf("retried %d (want 1: the first run queued again failed), dropped %v", m.CleanupRetried, m.DroppedBy)
	}
}

// The names reaper fails for real (the bucket refuses every write while
// its message size limit is too small for a delete mark) and is run
// again: once the bucket takes writes again the dead node's claim is
// released, the live node's stays.
func TestNamesReapFailsThenDone(t *testing.T) {
	e := startEmbedded(t)
	cfg := func(id string) Config { return Config{URL: e.url(), NodeID: id, Lease: 2 * time.Second} }
	a := New(cfg("a"))
	an := a.Names("t")
	if err := a.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Stop() })
	b := New(cfg("b"))
	bn := b.Names("t")
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	for _, c := range []struct {
		s    *Names
		name string
	}{{an, "alice"}, {bn, "bob"}} {
		if _, ok, err := c.s.Claim("room", c.name); !ok || err != nil {
			t.Fatalf("claim %s: %v %v", c.name, ok, err)
		}
	}
	waitFor(t, 10*time.Second, "a sees b", func() bool { return slices.Contains(a.Alive(), "b") })

	restore := RefuseWrites(t, a.js, BucketNames)
	_ = b.Stop() // a reaps b at once: its delete of bob's claim fails
	waitFor(t, 10*time.Second, "the failed reap retried", func() bool { return a.Metrics().CleanupRetried > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv := a.KV(BucketNames)
	if _, err := kv.Get(ctx, an.key("room", "bob")); err != nil {
		t.Fatalf("bob's claim while writes are refused: %v", err)
	}
	restore()
	waitFor(t, 20*time.Second, "bob's claim released", func() bool {
		_, err := kv.Get(ctx, an.key("room", "bob"))
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
	if e, err := kv.Get(ctx, an.key("room", "alice")); err != nil || string(e.Value()) != a.Member() {
		t.Fatalf("alice's claim: %v", err)
	}
	waitFor(t, 10*time.Second, "clean-up queue empty", func() bool { return a.Metrics().CleanupQueued == 0 })
	if d := a.Metrics().DroppedBy; d != ([len(DropReasons)]int64{}) {
		t.Fatalf("dropped %v", d)
	}
}

// RefuseWrites makes bucket refuse every write (its stream's message size
// limit drops below any record or delete mark: a JetStream error, not a
// lost revision check) until restore puts the limit back. For the tests
// of this package and of cluster_test.
func RefuseWrites(t testing.TB, js jetstream.JetStream, bucket string) (restore func()) {
	t.Helper()
	var limit int32
	ChangeBucket(t, js, bucket, func(sc *jetstream.StreamConfig) { limit, sc.MaxMsgSize = sc.MaxMsgSize, 1 })
	return func() { ChangeBucket(t, js, bucket, func(sc *jetstream.StreamConfig) { sc.MaxMsgSize = limit }) }
}

// ChangeBucket applies change to the configuration of bucket's stream.
func ChangeBucket(t testing.TB, js jetstream.JetStream, bucket string, change func(sc *jetstream.StreamConfig)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := js.Stream(ctx, "KV_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	sc := st.CachedInfo().Config
	change(&sc)
	if _, err := js.UpdateStream(ctx, sc); err != nil {
		t.Fatal(err)
	}
}
