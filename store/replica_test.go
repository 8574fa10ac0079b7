package store

import (
	"errors"
	"slices"
	"testing"
	"time"
)

func TestMakeID(t *testing.T) {
	ms := time.Date(2025, 1, 2, 3, 4, 5, 6e6, time.UTC).UnixMilli()
	id := MakeID(ms, 0xBEEF)
	if id.Time().UnixMilli() != ms || uint16(id) != 0xBEEF {
		t.Fatalf("MakeID: %v %x", id.Time(), uint16(id))
	}
	if !(MakeID(ms, 0xFFFF) < MakeID(ms+1, 0)) || !(MakeID(ms, 1) < MakeID(ms, 2)) {
		t.Fatal("MakeID does not sort by time, then low part")
	}
}

func TestConvParts(t *testing.T) {
	if g, a, b := Group("g").Parts(); g != "g" || a != "" || b != "" {
		t.Fatalf("group parts %q %q %q", g, a, b)
	}
	if g, a, b := Direct("zed", "amy").Parts(); g != "" || a != "amy" || b != "zed" {
		t.Fatalf("direct parts %q %q %q", g, a, b)
	}
	if Group("").Valid() || Direct("a", "b\n").Valid() || !Direct("a", "b").Valid() {
		t.Fatal("Valid")
	}
}

func TestReplicaBatch(t *testing.T) {
	dir := t.TempDir()
	p := open(t, dir, nil)
	d := Direct("bob", "alice")
	m1 := Message{ID: MakeID(1000, 7), From: "bob", To: "alice", ChatID: "c", Content: "hi"}
	m2 := Message{ID: MakeID(1001, 8), From: "alice", GroupID: "g", Content: "yo"}
	// The same writes applied twice (a replayed batch) change nothing.
	for range 2 {
		b := p.NewReplicaBatch()
		if err := b.PutMessage(d, m1); err != nil {
			t.Fatal(err)
		}
		if err := b.PutMessage(Group("g"), m2); err != nil {
			t.Fatal(err)
		}
		for _, u := range []string{"alice", "carol", "dan"} {
			if err := b.SetMember("g", u, true); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.SetMember("g", "dan", false); err != nil {
			t.Fatal(err)
		}
		if err := b.SetMember("g", "erin", false); err != nil { // never a member
			t.Fatal(err)
		}
		b.SetApplied("src", 42)
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	pg, err := p.History(Direct("alice", "bob"), 0, 10, 0)
	if err != nil || len(pg.Messages) != 1 || pg.Messages[0] != m1 {
		t.Fatalf("direct history %+v %v", pg, err)
	}
	pg, err = p.History(Group("g"), 0, 10, 0)
	if err != nil || len(pg.Messages) != 1 || pg.Messages[0] != m2 {
		t.Fatalf("group history %+v %v", pg, err)
	}
	if ms, err := p.Members("g"); err != nil || !slices.Equal(ms, []string{"alice", "carol"}) {
		t.Fatalf("members %v %v", ms, err)
	}
	if cs, err := p.Contacts("alice"); err != nil || !slices.Equal(cs, []string{"bob", "carol"}) {
		t.Fatalf("contacts %v %v", cs, err)
	}
	b := p.NewReplicaBatch()
	if err := b.PutMessage(Group(""), m2); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid conv: %v", err)
	}
	if err := b.PutMessage(Group("g"), Message{ID: 1, From: ""}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid from: %v", err)
	}
	if err := b.SetMember("g", "x\x00", true); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid user: %v", err)
	}
	b.Discard()

	// The position survives a reopen; Wipe forgets everything.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = open(t, dir, nil)
	if pos, err := p.Applied("src"); err != nil || pos != 42 {
		t.Fatalf("applied after reopen %d %v", pos, err)
	}
	if pos, err := p.Applied("other"); err != nil || pos != 0 {
		t.Fatalf("applied of an unknown source %d %v", pos, err)
	}
	if err := p.Wipe(); err != nil {
		t.Fatal(err)
	}
	pos, _ := p.Applied("src")
	pg, _ = p.History(Group("g"), 0, 10, 0)
	ms, _ := p.Members("g")
	if pos != 0 || len(pg.Messages) != 0 || len(ms) != 0 {
		t.Fatalf("after Wipe: %d %v %v", pos, pg.Messages, ms)
	}
	p.Close()
	if err := p.NewReplicaBatch().Commit(); !errors.Is(err, ErrClosed) {
		t.Fatalf("commit after close: %v", err)
	}
}
