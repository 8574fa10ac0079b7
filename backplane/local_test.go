package backplane_test

import (
	"sync"
	"testing"

	"partyline/backplane"
	"partyline/routing"
)

func TestLocalCensusChains(t *testing.T) {
	c := backplane.NewLocal("", nil, 0).Census("x")
	type step struct{ count, before, after int }
	for i, s := range []step{{1, 0, 1}, {3, 1, 3}, {0, 3, 0}, {0, 0, 0}, {2, 0, 2}} {
		called := false
		c.Mark("k", func() int { return s.count }, func(before, after int) {
			called = true
			if before != s.before || after != s.after {
				t.Errorf("step %d: before/after %d/%d, want %d/%d", i, before, after, s.before, s.after)
			}
		})
		if !called {
			t.Fatalf("step %d: done not called before Mark returned", i)
		}
	}
	if c.Remote("k") != 0 {
		t.Fatal("a single node has no remote count")
	}
	if n, err := c.RemoteTotal("k"); n != 0 || err != nil {
		t.Fatalf("RemoteTotal = %d, %v", n, err)
	}
}

func TestLocalNames(t *testing.T) {
	l := backplane.NewLocal("", nil, 0)
	a, b := l.Names("a"), l.Names("b")
	rev, ok, err := a.Claim("room", "bob")
	if !ok || err != nil {
		t.Fatalf("first claim: %v %v", ok, err)
	}
	if _, ok, _ := a.Claim("room", "bob"); ok {
		t.Fatal("second claim of a held name succeeded")
	}
	if _, ok, _ := a.Claim("room2", "bob"); !ok {
		t.Fatal("the name in another scope was refused")
	}
	if _, ok, _ := b.Claim("room", "bob"); !ok {
		t.Fatal("the name in another namespace was refused")
	}
	// Scopes and names that concatenate alike stay apart.
	if _, ok, _ := a.Claim("roo", "mbob"); !ok {
		t.Fatal("scope/name boundary not kept")
	}
	if err := a.Release("room", "bob", rev+100); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Claim("room", "bob"); ok {
		t.Fatal("a release at another revision freed the name")
	}
	if err := a.Release("room", "bob", rev); err != nil {
		t.Fatal(err)
	}
	rev2, ok, _ := a.Claim("room", "bob")
	if !ok || rev2 == rev {
		t.Fatalf("claim after release: ok %v rev %d (was %d)", ok, rev2, rev)
	}
}

func TestLocalGoBounded(t *testing.T) {
	l := backplane.NewLocal("", nil, 2)
	hold := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	for range 2 {
		if !l.Go(func() { defer wg.Done(); <-hold }) {
			t.Fatal("Go refused with a free slot")
		}
	}
	if l.Go(func() {}) {
		t.Fatal("Go accepted beyond the bound")
	}
	close(hold)
	wg.Wait()
	ran := make(chan struct{})
	for !l.Go(func() { close(ran) }) { // the slots free after the functions return
	}
	<-ran
}

func TestLocalBusDeliversLocally(t *testing.T) {
	hub := routing.NewHub()
	b := backplane.NewLocal("", nil, 0).Bus("ns", hub)
	released := false
	b.Ensure("r", func(release func()) { release(); released = true })
	if !released {
		t.Fatal("Ensure's done not called at once on a single node")
	}
	if n := b.PublishName("nobody", routing.NewRaw([]byte("x")), false, nil); n != 0 {
		t.Fatalf("PublishName to a missing room reached %d", n)
	}
}

func TestBlockingRunsAtOnceOnASingleNode(t *testing.T) {
	ran := false
	if !backplane.Blocking(backplane.NewLocal("", nil, 0), func() { ran = true }) || !ran {
		t.Fatal("Blocking on Local did not run fn before returning")
	}
}
