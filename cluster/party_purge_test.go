package cluster_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"partyline/cluster"
	"partyline/internal/testutil"
)

// The retained state of a room emptied while the party bucket refuses
// purges (its stream allows no roll-up, which a purge needs; the delete
// of the room's record still goes through) is purged once the bucket
// takes them again: the purge waits on the clean-up queue.
func TestPartyPurgeFailsThenDone(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	ca := party(t, a)
	code, _ := createRoom(t, ca, "alice", 0)
	ca.Send(M{"type": "set_state", "state": M{"round": 1}})
	ca.Expect("state")

	kv := bucketKV(t, ns.url, cluster.BucketParty)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	e, err := kv.Get(ctx, "room."+code)
	if err != nil {
		t.Fatal(err)
	}
	var rec struct{ ID string }
	if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.ID == "" {
		t.Fatalf("room record %s: %v", e.Value(), err)
	}
	state := "state." + rec.ID
	await(t, 10*time.Second, "the room's state stored", func() bool {
		_, err := kv.Get(ctx, state)
		return err == nil
	})

	restore := denyRollup(t, natsJS(t, ns.url), cluster.BucketParty)
	before, _ := metric(t, testutil.HTTPURL(a, "/metrics"), "partyline_cluster_cleanup_retries_total")
	ca.Send(M{"type": "leave"})
	await(t, 10*time.Second, "the room's record deleted", func() bool {
		_, err := kv.Get(ctx, "room."+code)
		return cluster.NotFound(err)
	})
	await(t, 10*time.Second, "the failed purge retried", func() bool {
		v, _ := metric(t, testutil.HTTPURL(a, "/metrics"), "partyline_cluster_cleanup_retries_total")
		return v > before
	})
	if _, err := kv.Get(ctx, state); err != nil {
		t.Fatalf("the room's state while purges are refused: %v", err)
	}
	restore()
	await(t, 20*time.Second, "the room's state purged", func() bool {
		_, err := kv.Get(ctx, state)
		return cluster.NotFound(err)
	})
	awaitCleanups(t, a)
}

// denyRollup makes bucket's stream refuse roll-ups (every purge of a key)
// until restore allows them again.
func denyRollup(t testing.TB, js jetstream.JetStream, bucket string) (restore func()) {
	t.Helper()
	cluster.ChangeBucket(t, js, bucket, func(sc *jetstream.StreamConfig) { sc.AllowRollup = false })
	return func() {
		cluster.ChangeBucket(t, js, bucket, func(sc *jetstream.StreamConfig) { sc.AllowRollup = true })
	}
}
