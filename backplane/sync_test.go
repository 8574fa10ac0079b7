package backplane_test

import (
	"testing"
	"time"

	"partyline/backplane"
)

// TestAfterSyncLocal: a single node's census is always in sync: fn runs
// before AfterSync returns, with no error, even with every worker busy.
func TestAfterSyncLocal(t *testing.T) {
	n := backplane.NewLocal("", nil, 1)
	release := make(chan struct{})
	defer close(release)
	if !n.Go(func() { <-release }) {
		t.Fatal("the only worker refused")
	}
	ran := false
	ok := backplane.AfterSync(n, n.Census("x"), time.Second, func(err error) {
		if err != nil {
			t.Errorf("Sync error %v", err)
		}
		ran = true
	})
	if !ok || !ran {
		t.Fatalf("AfterSync = %v, fn ran: %v; want both before it returned", ok, ran)
	}
}
