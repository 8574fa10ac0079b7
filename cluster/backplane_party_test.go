package cluster_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"partyline/backplane"
	"partyline/cluster"
)

// The party registry through the backplane: compare-and-set errors are
// backplane.ErrConflict and ErrNotFound, with the bucket's text.
func TestPartyRegistrySeam(t *testing.T) {
	ns := startNATS(t)
	c := csNode(t, ns.url, "a").Cluster()
	reg := c.Registry("party")
	ctx, cancel := c.Ctx()
	defer cancel()

	if _, err := reg.Get(ctx, "room.SEAM"); !errors.Is(err, backplane.ErrNotFound) || errors.Is(err, backplane.ErrConflict) {
		t.Fatalf("Get of a missing key: %v, want ErrNotFound", err)
	}
	rev, err := reg.Create(ctx, "room.SEAM", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(ctx, "room.SEAM", []byte("two")); !errors.Is(err, backplane.ErrConflict) || err.Error() == backplane.ErrConflict.Error() {
		t.Fatalf("second Create: %v, want ErrConflict with the bucket's text", err)
	}
	rev2, err := reg.Update(ctx, "room.SEAM", []byte("two"), rev)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Update(ctx, "room.SEAM", []byte("three"), rev); !errors.Is(err, backplane.ErrConflict) {
		t.Fatalf("Update at a stale revision: %v, want ErrConflict", err)
	}
	if e, err := reg.Get(ctx, "room.SEAM"); err != nil || string(e.Value) != "two" || e.Revision != rev2 {
		t.Fatalf("Get: %q rev %d err %v, want \"two\" rev %d", e.Value, e.Revision, err, rev2)
	}
	if _, err := reg.Create(ctx, "room2.SEAM", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Create(ctx, "room.SEAM.x", []byte("deeper")); err != nil {
		t.Fatal(err)
	}
	keys, err := reg.Keys(ctx, "room.")
	if err != nil || !slices.Equal(keys, []string{"room.SEAM"}) {
		t.Fatalf("Keys(room.) = %v, %v; want [room.SEAM]", keys, err)
	}
	if err := reg.Delete(ctx, "room.SEAM", rev); !errors.Is(err, backplane.ErrConflict) {
		t.Fatalf("Delete at a stale revision: %v, want ErrConflict", err)
	}
	if err := reg.Delete(ctx, "room.SEAM", rev2); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get(ctx, "room.SEAM"); !errors.Is(err, backplane.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := reg.Purge(ctx, "room2.SEAM"); err != nil {
		t.Fatal(err)
	}
	if keys, err := reg.Keys(ctx, "room2."); err != nil || len(keys) != 0 {
		t.Fatalf("Keys(room2.) after Purge = %v, %v; want none", keys, err)
	}
}

// A party room log through the backplane: a follower on another node
// delivers every entry in the log's order, and Wait and Last agree on seqs.
func TestPartyRoomLogSeam(t *testing.T) {
	ns := startNATS(t)
	cfg := backplane.RoomLogConfig{Stream: "PL_SEAM_TEST", Prefix: "pl.seamtest", PerRoom: 10}
	a, b := logNode(t, ns.url, "a", cfg), logNode(t, ns.url, "b", cfg)

	last, err := a.Last("r1")
	if err != nil || last != 0 {
		t.Fatalf("Last of an empty room: %d, %v", last, err)
	}
	seq, err := a.AppendSync("r1", backplane.LogEntry{Ev: "open"})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []backplane.LogEntry
	fl, at, err := b.Follow("r1", func(e backplane.LogEntry) {
		mu.Lock()
		got = append(got, backplane.LogEntry{Seq: e.Seq, Ev: e.Ev, From: e.From, To: e.To, Rev: e.Rev, Data: append([]byte(nil), e.Data...), Node: e.Node})
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fl.Stop)
	if at != seq {
		t.Fatalf("Follow returned last %d, want %d", at, seq)
	}
	stored := make(chan uint64, 1)
	if !a.Append("r1", backplane.LogEntry{From: "x", To: "y", Rev: 3, Data: []byte(`"hi"`)}) ||
		!a.AppendThen("r1", backplane.LogEntry{Ev: "state", From: "x", Data: []byte(`{}`)}, func(s uint64) { stored <- s }) {
		t.Fatal("Append refused")
	}
	var sseq uint64
	select {
	case sseq = <-stored:
	case <-time.After(5 * time.Second):
		t.Fatal("AppendThen never reported its seq")
	}
	if !fl.Wait(sseq, 5*time.Second) {
		t.Fatal("the follower did not deliver the state entry")
	}
	if l, err := b.Last("r1"); err != nil || l != sseq {
		t.Fatalf("Last = %d, %v; want %d", l, err, sseq)
	}
	mu.Lock()
	if len(got) != 3 || got[0].Ev != "open" || got[1].From != "x" || got[1].To != "y" || got[1].Rev != 3 ||
		string(got[1].Data) != `"hi"` || got[2].Ev != "state" || got[2].Seq != sseq || got[1].Seq <= got[0].Seq {
		t.Fatalf("delivered %+v", got)
	}
	if got[0].Node == "" {
		t.Fatalf("entries carry no node: %+v", got[0])
	}
	mu.Unlock()
	if err := a.Purge("r1"); err != nil {
		t.Fatal(err)
	}
	if l, err := a.Last("r1"); err != nil || l != 0 {
		t.Fatalf("Last after Purge = %d, %v; want 0", l, err)
	}
	fl.Stop()
	if fl.Wait(sseq+100, time.Second) {
		t.Fatal("Wait on a stopped follower reported true")
	}
}

// logNode starts a bare cluster node with the room log cfg registered.
func logNode(t testing.TB, url, name string, cfg backplane.RoomLogConfig) (l backplane.RoomLog) {
	t.Helper()
	csNode(t, url, name, func(n *cluster.Node) { l = n.Cluster().RoomLog(cfg) })
	return l
}
