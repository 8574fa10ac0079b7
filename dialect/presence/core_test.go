package presence

import (
	"io"
	"log/slog"
	"runtime"
	"testing"
	"time"

	"partyline/auth"
	"partyline/store"
)

// TestCoreLeavesNothingRunning: a started core that served nothing has
// no goroutines and no store; after work, Shutdown stops every goroutine
// and closes the store.
func TestCoreLeavesNothingRunning(t *testing.T) {
	base := runtime.NumGoroutine()
	cfg := Defaults()
	jwt := auth.Defaults()
	jwt.Secret = "s"
	c := NewCore(cfg, jwt, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	// Compare with <=: goroutines of other packages' init may end meanwhile.
	if n := runtime.NumGoroutine(); n > base {
		t.Fatalf("%d goroutines after Start, %d before", n, base)
	}
	done := make(chan struct{})
	if !c.work.Go(func() {
		defer close(done)
		st, err := c.Store()
		if err != nil {
			t.Error(err)
			return
		}
		if err := st.Join("g", "u"); err != nil {
			t.Error(err)
		}
	}) {
		t.Fatal("work refused")
	}
	<-done
	c.Registry.Connect("u")
	c.Registry.Disconnect("u")
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Store(); err != store.ErrClosed {
		t.Fatalf("Store after Shutdown: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after Shutdown, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}
