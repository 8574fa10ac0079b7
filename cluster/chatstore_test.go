package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"partyline/cluster"
	"partyline/store"
)

var csQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// csNode starts a bare cluster node (no server) for a chat-store test;
// before, if given, registers what must be before Start.
func csNode(t testing.TB, url, name string, before ...func(*cluster.Node)) *cluster.Node {
	t.Helper()
	n := cluster.New(cluster.Config{URL: url, NodeID: runID + "-" + t.Name() + "-" + name, Lease: 2 * time.Second, Logger: csQuiet})
	for _, fn := range before {
		fn(n)
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

func csOpen(t testing.TB, n *cluster.Node, dir string) *cluster.ChatStore {
	t.Helper()
	cs, err := n.OpenChatStore(dir, store.PebbleOptions{Logger: csQuiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cs.Close() })
	return cs
}

// csPair starts a NATS server and two nodes with their chat stores.
func csPair(t testing.TB) (a, b *cluster.ChatStore) {
	ns := startNATS(t)
	return csOpen(t, csNode(t, ns.url, "a"), t.TempDir()), csOpen(t, csNode(t, ns.url, "b"), t.TempDir())
}

// csName makes names unique to the test run (a $NATS_URL server keeps the
// stream between runs).
func csName(t testing.TB, s string) string { return s + "-" + runID + "-" + t.Name() }

func csMust(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func csAppendN(t testing.TB, cs *cluster.ChatStore, conv store.Conv, m store.Message, from, n int) []store.Message {
	t.Helper()
	var out []store.Message
	for i := from; i < from+n; i++ {
		m.Content = fmt.Sprint(i)
		got, err := cs.Append(conv, m)
		csMust(t, err)
		out = append(out, got)
	}
	return out
}

// csHistory pages through conv newest first, limit per page.
func csHistory(t testing.TB, cs *cluster.ChatStore, conv store.Conv, limit int) []store.Message {
	t.Helper()
	var all []store.Message
	var before store.ID
	for {
		pg, err := cs.History(conv, before, limit, 0)
		csMust(t, err)
		if len(pg.Messages) > limit {
			t.Fatalf("page of %d > limit %d", len(pg.Messages), limit)
		}
		all = append(slices.Clone(pg.Messages), all...)
		if !pg.HasMore {
			return all
		}
		before = pg.Messages[0].ID
	}
}

func TestChatStoreAcrossNodes(t *testing.T) {
	a, b := csPair(t)
	g := csName(t, "g")
	sent := csAppendN(t, a, store.Group(g), store.Message{From: "alice", GroupID: g}, 0, 25)
	for i := 1; i < len(sent); i++ {
		if sent[i].ID <= sent[i-1].ID {
			t.Fatalf("id %d (%v) not after %d (%v)", i, sent[i].ID, i-1, sent[i-1].ID)
		}
	}
	// B reads A's messages at once, with the same IDs, page by page.
	for _, cs := range []*cluster.ChatStore{b, a} {
		if got := csHistory(t, cs, store.Group(g), 7); !slices.Equal(got, sent) {
			t.Fatalf("history:\n got %+v\nwant %+v", got, sent)
		}
	}
	pg, err := b.History(store.Group(g), sent[10].ID, 3, 0)
	if err != nil || !pg.HasMore || !slices.Equal(pg.Messages, sent[7:10]) {
		t.Fatalf("page before #10: %+v %v", pg, err)
	}
	pg, err = b.History(store.Group(g), 0, 10, 1)
	if err != nil || !pg.HasMore || len(pg.Messages) != 1 || pg.Messages[0] != sent[24] {
		t.Fatalf("maxBytes page: %+v %v", pg, err)
	}

	// One-to-one, the other way round: B writes, A reads.
	alice, bob := csName(t, "alice"), csName(t, "bob")
	d, err := b.Append(store.Direct(bob, alice), store.Message{From: bob, To: alice, ChatID: "c1", Content: "hello"})
	csMust(t, err)
	pg, err = a.History(store.Direct(alice, bob), 0, 10, 0)
	if err != nil || len(pg.Messages) != 1 || pg.Messages[0] != d || pg.HasMore {
		t.Fatalf("direct history on A: %+v %v, want %+v", pg, err, d)
	}
	if _, err := b.History(store.Group(g), d.ID, 5, 0); !errors.Is(err, store.ErrUnknownMessage) {
		t.Fatalf("before from another conversation: %v", err)
	}
	if _, err := a.History(store.Group(g), sent[24].ID+1, 5, 0); !errors.Is(err, store.ErrUnknownMessage) {
		t.Fatalf("unknown before: %v", err)
	}
	if cs, err := a.Contacts(alice); err != nil || !slices.Equal(cs, []string{bob}) {
		t.Fatalf("alice's contacts %v %v", cs, err)
	}
}

func TestChatStoreMembership(t *testing.T) {
	a, b := csPair(t)
	g := csName(t, "g")
	isMember := func(cs *cluster.ChatStore, user string) bool {
		t.Helper()
		ok, err := cs.IsMember(g, user)
		csMust(t, err)
		return ok
	}
	csMust(t, a.Join(g, "alice"))
	if !isMember(b, "alice") || isMember(b, "bob") {
		t.Fatal("B does not see alice's join")
	}
	if err := b.Join(g, "alice"); !errors.Is(err, store.ErrAlreadyMember) {
		t.Fatalf("double join: %v", err)
	}
	if err := a.Leave(g, "bob"); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("leave of a non-member: %v", err)
	}
	csMust(t, b.Join(g, "bob"))
	csMust(t, b.Join(g, "carol"))
	if ms, err := a.Members(g); err != nil || !slices.Equal(ms, []string{"alice", "bob", "carol"}) {
		t.Fatalf("members on A: %v %v", ms, err)
	}
	csMust(t, b.Leave(g, "alice"))
	if isMember(a, "alice") {
		t.Fatal("A still sees alice after her leave on B")
	}
	if err := a.Leave(g, "alice"); !errors.Is(err, store.ErrNotMember) {
		t.Fatalf("second leave: %v", err)
	}
	csMust(t, a.Join(g, "alice")) // over the delete marker
	if !isMember(b, "alice") {
		t.Fatal("rejoin not seen")
	}

	// Contacts: group co-members and one-to-one partners, on either node.
	_, err := a.Append(store.Direct("alice", "dave"), store.Message{From: "alice", To: "dave", Content: "x"})
	csMust(t, err)
	for _, cs := range []*cluster.ChatStore{a, b} {
		if c, err := cs.Contacts("alice"); err != nil || !slices.Equal(c, []string{"bob", "carol", "dave"}) {
			t.Fatalf("contacts: %v %v", c, err)
		}
	}
	if c, err := b.Contacts("dave"); err != nil || !slices.Equal(c, []string{"alice"}) {
		t.Fatalf("dave's contacts: %v %v", c, err)
	}

	// The same join from both nodes at once: exactly one wins, also over
	// a delete marker.
	for round := range 10 {
		user := fmt.Sprint("racer", round)
		if round%2 == 1 {
			csMust(t, a.Join(g, user))
			csMust(t, a.Leave(g, user))
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, cs := range []*cluster.ChatStore{a, b} {
			wg.Go(func() { errs[i] = cs.Join(g, user) })
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrAlreadyMember):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 || !isMember(a, user) || !isMember(b, user) {
			t.Fatalf("round %d: %d joins succeeded (%v)", round, ok, errs)
		}
	}
}

func TestChatStoreRestart(t *testing.T) {
	ns := startNATS(t)
	a := csOpen(t, csNode(t, ns.url, "a"), t.TempDir())
	nb := csNode(t, ns.url, "b")
	dirB := t.TempDir()
	b := csOpen(t, nb, dirB)
	g := csName(t, "g")
	m := store.Message{From: "alice", GroupID: g}
	sent := csAppendN(t, a, store.Group(g), m, 0, 5)
	csMust(t, a.Join(g, "alice"))
	if got := csHistory(t, b, store.Group(g), 100); !slices.Equal(got, sent) {
		t.Fatalf("before the restart: %+v", got)
	}
	csMust(t, b.Close())
	csMust(t, b.Close()) // idempotent
	if _, err := b.History(store.Group(g), 0, 1, 0); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("history after close: %v", err)
	}
	if _, err := b.Append(store.Group(g), m); !errors.Is(err, store.ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}

	// The index remembers how far it got.
	idx, err := store.OpenPebble(filepath.Join(dirB, "chat-index"), store.PebbleOptions{Logger: csQuiet})
	csMust(t, err)
	pos, err := idx.Applied(cluster.StreamChat)
	csMust(t, err)
	csMust(t, idx.Close())
	if pos < 5 {
		t.Fatalf("applied position after close: %d", pos)
	}

	sent = append(sent, csAppendN(t, a, store.Group(g), m, 5, 5)...)
	csMust(t, a.Join(g, "bob"))
	csMust(t, a.Leave(g, "alice"))
	for _, dir := range []string{dirB, t.TempDir()} { // resumed, then rebuilt
		b := csOpen(t, nb, dir)
		if got := csHistory(t, b, store.Group(g), 3); !slices.Equal(got, sent) {
			t.Fatalf("after reopen in %s:\n got %+v\nwant %+v", dir, got, sent)
		}
		if ms, err := b.Members(g); err != nil || !slices.Equal(ms, []string{"bob"}) {
			t.Fatalf("members after reopen: %v %v", ms, err)
		}
		csMust(t, b.Close())
	}
}

// Streams deleted behind the index's back (a new NATS store): the index
// is ahead of JetStream at reopen and is rebuilt instead of trusted.
func TestChatStoreStreamsRecreated(t *testing.T) {
	ns := startNATS(t)
	n := csNode(t, ns.url, "a")
	dir := t.TempDir()
	cs := csOpen(t, n, dir)
	g := csName(t, "g")
	csAppendN(t, cs, store.Group(g), store.Message{From: "alice", GroupID: g}, 0, 3)
	csMust(t, cs.Join(g, "alice"))
	if ms, err := cs.Members(g); err != nil || len(ms) != 1 {
		t.Fatalf("members: %v %v", ms, err)
	}
	csMust(t, cs.Close())

	nc, err := nats.Connect(ns.url)
	csMust(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	csMust(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	csMust(t, js.DeleteStream(ctx, cluster.StreamChat))
	csMust(t, js.DeleteKeyValue(ctx, cluster.BucketGroups))

	cs = csOpen(t, n, dir)
	sent := csAppendN(t, cs, store.Group(g), store.Message{From: "bob", GroupID: g}, 10, 1)
	if got := csHistory(t, cs, store.Group(g), 10); !slices.Equal(got, sent) {
		t.Fatalf("history after the streams were recreated: %+v, want %+v", got, sent)
	}
	if ms, err := cs.Members(g); err != nil || len(ms) != 0 {
		t.Fatalf("members after the bucket was recreated: %v %v", ms, err)
	}
}

// The NATS server restarts (same store) under an Append: it succeeds
// once, and the feeds of the other node recover.
func TestChatStoreNATSRestart(t *testing.T) {
	ns := startNATS(t)
	ns.embedded(t)
	a := csOpen(t, csNode(t, ns.url, "a"), t.TempDir())
	b := csOpen(t, csNode(t, ns.url, "b"), t.TempDir())
	g := csName(t, "g")
	conv := store.Group(g)
	sent := csAppendN(t, a, conv, store.Message{From: "alice", GroupID: g}, 0, 1)
	csMust(t, a.Join(g, "alice"))
	if got := csHistory(t, b, conv, 10); !slices.Equal(got, sent) {
		t.Fatalf("before the restart: %+v", got)
	}

	ns.stop()
	done := make(chan store.Message, 1)
	go func() {
		m, err := a.Append(conv, store.Message{From: "alice", GroupID: g, Content: "during"})
		if err != nil {
			t.Error(err)
		}
		done <- m
	}()
	ns.start()
	sent = append(sent, <-done)
	csMust(t, a.Join(g, "bob"))
	start := time.Now()
	var got []store.Message
	await(t, 60*time.Second, "history on B after the restart", func() bool {
		pg, err := b.History(conv, 0, 10, 0)
		got = pg.Messages
		return err == nil && len(got) >= 2
	})
	if !slices.Equal(got, sent) {
		t.Fatalf("after the restart:\n got %+v\nwant %+v", got, sent)
	}
	await(t, 60*time.Second, "membership on B after the restart", func() bool {
		ok, err := b.IsMember(g, "bob")
		return err == nil && ok
	})
	t.Logf("B caught up %v after the restart", time.Since(start).Round(time.Millisecond))
}

func TestChatStoreInvalid(t *testing.T) {
	ns := startNATS(t)
	cs := csOpen(t, csNode(t, ns.url, "a"), t.TempDir())
	long := string(make([]byte, store.MaxName+1))
	for _, c := range []struct {
		what string
		err  error
	}{
		{"append to group \"\"", func() error { _, err := cs.Append(store.Group(""), store.Message{From: "a"}); return err }()},
		{"append from \"\"", func() error { _, err := cs.Append(store.Group("g"), store.Message{}); return err }()},
		{"append to a control character", func() error {
			_, err := cs.Append(store.Direct("a", "b\n"), store.Message{From: "a"})
			return err
		}()},
		{"history of a long name", func() error { _, err := cs.History(store.Group(long), 0, 1, 0); return err }()},
		{"join \"\"", cs.Join("", "a")},
		{"join as \"\"", cs.Join("g", "")},
		{"leave \\x7f", cs.Leave("g\x7f", "a")},
	} {
		if !errors.Is(c.err, store.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", c.what, c.err)
		}
	}
	if ok, err := cs.IsMember("", "a"); ok || err != nil {
		t.Errorf("IsMember of an invalid group: %v %v", ok, err)
	}
}

// Many concurrent readers on two nodes while both write: every read sees
// the writes acknowledged before it; also logs rough latencies.
func TestChatStoreConcurrentReaders(t *testing.T) {
	a, b := csPair(t)
	g := csName(t, "g")
	conv := store.Group(g)

	const n = 100
	start := time.Now()
	csAppendN(t, a, conv, store.Message{From: "alice", GroupID: g}, 0, n)
	perAppend := time.Since(start) / n
	start = time.Now()
	for range n {
		_, err := b.History(conv, 0, 1, 0)
		csMust(t, err)
	}
	perRead := time.Since(start) / n
	t.Logf("one Append %v, one barrier read %v (sequential, embedded server, -race if on)", perAppend, perRead)

	var wg sync.WaitGroup
	for w := range 4 {
		writer := []*cluster.ChatStore{a, b}[w%2]
		wg.Go(func() {
			for i := range 20 {
				m, err := writer.Append(conv, store.Message{From: "alice", GroupID: g, Content: fmt.Sprint(w, "/", i)})
				if err != nil {
					t.Error(err)
					return
				}
				// Read-your-writes on the writer's node, and on the other one.
				for _, r := range []*cluster.ChatStore{writer, a, b} {
					pg, err := r.History(conv, 0, 1, 0)
					if err != nil || len(pg.Messages) != 1 || pg.Messages[0].ID < m.ID {
						t.Errorf("read after write %v: %+v %v", m.ID, pg.Messages, err)
						return
					}
				}
			}
		})
	}
	for range 16 {
		wg.Go(func() {
			for range 20 {
				for _, r := range []*cluster.ChatStore{a, b} {
					if _, err := r.Contacts("alice"); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
	ga, gb := csHistory(t, a, conv, 50), csHistory(t, b, conv, 50)
	if len(ga) != n+80 || !slices.Equal(ga, gb) {
		t.Fatalf("final histories differ or are short: %d vs %d", len(ga), len(gb))
	}
	ids := map[store.ID]bool{}
	for _, m := range ga {
		if ids[m.ID] {
			t.Fatalf("duplicate id %v", m.ID)
		}
		ids[m.ID] = true
	}
}
