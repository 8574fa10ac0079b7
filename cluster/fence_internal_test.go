package cluster

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The fence mark of a reaped node is written even if the fence bucket
// refuses it at first: it is written again on the clean-up queue once the
// bucket takes writes, naming the incarnation it fences.
func TestFenceMarkWrittenAgain(t *testing.T) {
	e := startEmbedded(t)
	cfg := func(id string) Config { return Config{URL: e.url(), NodeID: id, Lease: 2 * time.Second} }
	a := startNode(t, cfg("a"))
	b := startNode(t, cfg("b"))
	waitFor(t, 10*time.Second, "a sees b", func() bool { return slices.Contains(a.Alive(), "b") })
	member := b.Member()

	restore := RefuseWrites(t, a.js, BucketFence)
	_ = b.Stop() // a reaps b at once: its fence mark is refused
	waitFor(t, 10*time.Second, "the failed fence mark retried", func() bool { return a.Metrics().CleanupRetried > 0 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv := a.KV(BucketFence)
	if _, err := kv.Get(ctx, Token("b")); !NotFound(err) {
		t.Fatalf("b's fence mark while writes are refused: %v", err)
	}
	restore()
	waitFor(t, 20*time.Second, "b's fence mark written", func() bool {
		e, err := kv.Get(ctx, Token("b"))
		return err == nil && strings.HasSuffix(string(e.Value()), " for "+member)
	})
	waitFor(t, 10*time.Second, "clean-up queue empty", func() bool { return a.Metrics().CleanupQueued == 0 })
	if d := a.Metrics().DroppedBy; d != ([len(DropReasons)]int64{}) {
		t.Fatalf("dropped %v", d)
	}
}

// A fence mark written late fences only the incarnation it names: a mark
// for an earlier run of the node id is ignored by the run that is up, a
// mark for that run (refused first, written again) fences it.
func TestFenceMarkNamesIncarnation(t *testing.T) {
	e := startEmbedded(t)
	cfg := func(id string) Config { return Config{URL: e.url(), NodeID: id, Lease: 2 * time.Second} }
	a := startNode(t, cfg("a"))
	b := New(cfg("b"))
	var fenced atomic.Int32
	b.OnFenced(func() { fenced.Add(1) })
	if err := b.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv := a.KV(BucketFence)

	// refusedFence writes a fence mark for b's incarnation inc while the
	// bucket refuses it, then lets the bucket take writes again.
	refusedFence := func(inc string) {
		restore := RefuseWrites(t, a.js, BucketFence)
		retried := a.Metrics().CleanupRetried
		a.live.fence("b", inc, nil)
		waitFor(t, 10*time.Second, "the failed fence mark retried", func() bool { return a.Metrics().CleanupRetried > retried })
		restore()
	}
	refusedFence("earlier")
	waitFor(t, 20*time.Second, "fence mark for an earlier run written", func() bool {
		e, err := kv.Get(ctx, Token("b"))
		return err == nil && strings.HasSuffix(string(e.Value()), " for b#earlier")
	})
	refusedFence(b.live.inc)
	// b consumes (deletes) the mark for its own run; the watch hands it
	// the marks in order, so the earlier one was seen and ignored.
	waitFor(t, 20*time.Second, "b fenced", func() bool { return fenced.Load() > 0 })
	if n := fenced.Load(); n != 1 {
		t.Fatalf("b fenced %d times, want 1 (by the mark for its own run)", n)
	}
	waitFor(t, 10*time.Second, "b's mark consumed", func() bool {
		_, err := kv.Get(ctx, Token("b"))
		return NotFound(err)
	})
}
