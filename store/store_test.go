package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"
)

func open(t *testing.T, dir string, now func() time.Time) *Pebble {
	t.Helper()
	p, err := OpenPebble(dir, PebbleOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func TestIDText(t *testing.T) {
	ids := []ID{1, 31, 32, 1 << 16, ID(time.Now().UnixMilli()) << 16, ^ID(0)}
	prev := ""
	for _, id := range ids {
		s := id.String()
		if len(s) != idLen {
			t.Fatalf("%d -> %q: length %d", id, s, len(s))
		}
		back, ok := ParseID(s)
		if !ok || back != id {
			t.Fatalf("%q parses to %d, %v; want %d", s, back, ok, id)
		}
		if s <= prev {
			t.Fatalf("text %q does not sort after %q", s, prev)
		}
		prev = s
	}
	for _, bad := range []string{"", "0000000000000", "000000000000", "G000000000000", "00000000000000", "0000000000O01", "zzzzzzzzzzzzz"} {
		if _, ok := ParseID(bad); ok {
			t.Fatalf("ParseID(%q) accepted", bad)
		}
	}
}

func TestHistoryPaging(t *testing.T) {
	p := open(t, t.TempDir(), nil)
	g := Group("g1")
	var ids []ID
	for i := range 10 {
		m, err := p.Append(g, Message{From: "alice", GroupID: "g1", Content: fmt.Sprint(i)})
		if err != nil {
			t.Fatal(err)
		}
		if len(ids) > 0 && m.ID <= ids[len(ids)-1] {
			t.Fatalf("id %v not after %v", m.ID, ids[len(ids)-1])
		}
		ids = append(ids, m.ID)
	}
	// Another conversation must not leak into g1's pages.
	other, err := p.Append(Direct("bob", "alice"), Message{From: "bob", To: "alice", ChatID: "c", Content: "x"})
	if err != nil {
		t.Fatal(err)
	}
	contents := func(pg Page) []string {
		var out []string
		for _, m := range pg.Messages {
			out = append(out, m.Content)
		}
		return out
	}
	pg, err := p.History(g, 0, 3, 0)
	if err != nil || !slices.Equal(contents(pg), []string{"7", "8", "9"}) || !pg.HasMore {
		t.Fatalf("newest page: %v %v %v", contents(pg), pg.HasMore, err)
	}
	pg, err = p.History(g, pg.Messages[0].ID, 3, 0)
	if err != nil || !slices.Equal(contents(pg), []string{"4", "5", "6"}) || !pg.HasMore {
		t.Fatalf("second page: %v %v %v", contents(pg), pg.HasMore, err)
	}
	pg, err = p.History(g, ids[3], 3, 0)
	if err != nil || !slices.Equal(contents(pg), []string{"0", "1", "2"}) || pg.HasMore {
		t.Fatalf("last page: %v %v %v", contents(pg), pg.HasMore, err)
	}
	pg, err = p.History(g, ids[0], 3, 0)
	if err != nil || len(pg.Messages) != 0 || pg.HasMore {
		t.Fatalf("before the oldest: %v %v %v", contents(pg), pg.HasMore, err)
	}
	pg, err = p.History(g, 0, 50, 0)
	if err != nil || len(pg.Messages) != 10 || pg.HasMore {
		t.Fatalf("all: %v %v %v", contents(pg), pg.HasMore, err)
	}
	if _, err := p.History(g, other.ID, 3, 0); !errors.Is(err, ErrUnknownMessage) {
		t.Fatalf("before from another conversation: %v", err)
	}
	if _, err := p.History(g, ids[9]+1, 3, 0); !errors.Is(err, ErrUnknownMessage) {
		t.Fatalf("unknown before: %v", err)
	}
	// maxBytes keeps at least one message and reports more.
	pg, err = p.History(g, 0, 10, 1)
	if err != nil || len(pg.Messages) != 1 || !pg.HasMore {
		t.Fatalf("maxBytes page: %v %v %v", contents(pg), pg.HasMore, err)
	}
	d, err := p.History(Direct("alice", "bob"), 0, 10, 0)
	if err != nil || len(d.Messages) != 1 || d.Messages[0] != other {
		t.Fatalf("direct history %+v %v, want %+v", d.Messages, err, other)
	}
}

func TestMembershipAndContacts(t *testing.T) {
	p := open(t, t.TempDir(), nil)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(p.Join("g1", "alice"))
	must(p.Join("g1", "bob"))
	must(p.Join("g2", "carol"))
	must(p.Join("g2", "alice"))
	if err := p.Join("g1", "alice"); !errors.Is(err, ErrAlreadyMember) {
		t.Fatalf("second join: %v", err)
	}
	must(p.Join("order", "carol"))
	must(p.Join("order", "al"))
	must(p.Join("order", "bob"))
	if m, _ := p.Members("order"); !slices.Equal(m, []string{"al", "bob", "carol"}) {
		t.Fatalf("Members not in byte order: %v", m)
	}
	if ok, err := p.IsMember("g1", "bob"); !ok || err != nil {
		t.Fatalf("IsMember: %v %v", ok, err)
	}
	if ok, _ := p.IsMember("g1", "carol"); ok {
		t.Fatal("carol is not in g1")
	}
	if _, err := p.Append(Direct("dave", "alice"), Message{From: "dave", To: "alice", Content: "hi"}); err != nil {
		t.Fatal(err)
	}
	if c, _ := p.Contacts("alice"); !slices.Equal(c, []string{"bob", "carol", "dave"}) {
		t.Fatalf("alice's contacts %v", c)
	}
	if c, _ := p.Contacts("dave"); !slices.Equal(c, []string{"alice"}) {
		t.Fatalf("dave's contacts %v", c)
	}
	must(p.Leave("g2", "alice"))
	if err := p.Leave("g2", "alice"); !errors.Is(err, ErrNotMember) {
		t.Fatalf("second leave: %v", err)
	}
	if m, _ := p.Members("g2"); !slices.Equal(m, []string{"carol"}) {
		t.Fatalf("g2 members %v", m)
	}
	if c, _ := p.Contacts("alice"); !slices.Equal(c, []string{"bob", "dave"}) {
		t.Fatalf("alice's contacts after leaving g2: %v", c)
	}
	long := string(make([]byte, MaxName+1))
	for _, err := range []error{p.Join(long, "x"), p.Leave("g", ""), func() error {
		_, err := p.Append(Direct("a", long), Message{From: "a", Content: "x"})
		return err
	}(), func() error { _, err := p.History(Group(""), 0, 1, 0); return err }()} {
		if !errors.Is(err, ErrInvalid) {
			t.Fatalf("invalid name: %v", err)
		}
	}
	// A name that is a prefix of another must not match it.
	must(p.Join("g", "x"))
	if m, _ := p.Members("g"); !slices.Equal(m, []string{"x"}) {
		t.Fatalf("members of g: %v", m)
	}
}

// TestConcurrentJoinOnce: of many concurrent joins of one user, exactly
// one succeeds (the writer checks and writes in one batch).
func TestConcurrentJoinOnce(t *testing.T) {
	p := open(t, t.TempDir(), nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p.Join("g", "alice") == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d joins succeeded, want 1", ok)
	}
}

// TestGroupCommit: concurrent appends share fsyncs and all get unique,
// increasing IDs.
func TestGroupCommit(t *testing.T) {
	p := open(t, t.TempDir(), nil)
	const n = 400
	ids := make(chan ID, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, err := p.Append(Group("g"), Message{From: "u", GroupID: "g", Content: fmt.Sprint(i)})
			if err != nil {
				t.Error(err)
			}
			ids <- m.ID
		}()
	}
	wg.Wait()
	close(ids)
	seen := map[ID]bool{}
	for id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %v", id)
		}
		seen[id] = true
	}
	batches, writes := p.Stats()
	t.Logf("%d writes in %d batches", writes, batches)
	if writes != n || batches >= n {
		t.Fatalf("%d writes in %d batches: no group commit", writes, batches)
	}
}

// TestReopen: data and the ID sequence survive a close and reopen, even
// when the clock has gone back.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	clock := time.Now()
	p := open(t, dir, func() time.Time { return clock })
	last, err := p.Append(Group("g"), Message{From: "a", GroupID: "g", Content: "before"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Join("g", "a"); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(Group("g"), Message{From: "a", Content: "x"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
	if _, err := p.History(Group("g"), 0, 1, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	clock = clock.Add(-time.Hour)
	q := open(t, dir, func() time.Time { return clock })
	m, err := q.Append(Group("g"), Message{From: "a", GroupID: "g", Content: "after"})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID <= last.ID {
		t.Fatalf("id after reopen %v <= %v", m.ID, last.ID)
	}
	pg, err := q.History(Group("g"), 0, 10, 0)
	if err != nil || len(pg.Messages) != 2 || pg.Messages[0].Content != "before" {
		t.Fatalf("history after reopen: %+v %v", pg, err)
	}
	if ok, _ := q.IsMember("g", "a"); !ok {
		t.Fatal("membership lost")
	}
}

func TestEncodeMessage(t *testing.T) {
	m := Message{From: "a", To: "b", ChatID: "c", Content: "ü\x00 long " + string(make([]byte, 300))}
	var back Message
	if err := decodeMessage(encodeMessage(&m), &back); err != nil || back != m {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	enc := encodeMessage(&m)
	for i := range len(enc) - 1 {
		if decodeMessage(enc[:i], &back) == nil {
			t.Fatalf("truncated record of %d bytes decoded", i)
		}
	}
}
