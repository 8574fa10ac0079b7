package store

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// fakeFree is an injectable free-space reading.
type fakeFree struct{ n atomic.Int64 }

func (f *fakeFree) free(string) (uint64, error) { return uint64(f.n.Load()), nil }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 5s: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSpaceGuardFloor crosses the floor both ways: below it Reserve and
// Err report ErrStorageFull, and once space is back Err clears by itself
// (without a write) and Reserve lets writes through again.
func TestSpaceGuardFloor(t *testing.T) {
	var f fakeFree
	f.n.Store(100 << 20)
	g := NewSpaceGuard(t.TempDir(), SpaceOptions{MinFree: 10 << 20, Ballast: -1, Interval: 10 * time.Millisecond, Free: f.free, Logger: quiet})
	if err := g.Reserve(1 << 20); err != nil || g.Err() != nil {
		t.Fatalf("above the floor: %v %v", err, g.Err())
	}
	// The charge counts until the next reading: 95 MiB more would leave 4.
	if err := g.Reserve(95 << 20); err != nil {
		// the stale estimate is re-read before refusing: 100-95 = 5 < 10
		if !errors.Is(err, ErrStorageFull) {
			t.Fatal(err)
		}
	} else {
		t.Fatal("95 MiB of 100 with a floor of 10 was let through")
	}
	f.n.Store(9 << 20)
	time.Sleep(15 * time.Millisecond)
	err := g.Reserve(1)
	if !errors.Is(err, ErrStorageFull) || !strings.Contains(err.Error(), "below the floor") {
		t.Fatalf("below the floor: %v", err)
	}
	if !errors.Is(g.Err(), ErrStorageFull) {
		t.Fatalf("Err below the floor: %v", g.Err())
	}
	f.n.Store(50 << 20)
	eventually(t, "Err clears when space is back", func() bool { return g.Err() == nil })
	if err := g.Reserve(1 << 20); err != nil {
		t.Fatalf("after space came back: %v", err)
	}
}

// TestSpaceGuardCharges checks that writes between two readings are
// charged: with readings that never change, the guard still refuses once
// what it let through would cross the floor (the next reading is forced
// only at the crossing).
func TestSpaceGuardCharges(t *testing.T) {
	var f fakeFree
	f.n.Store(20 << 20)
	var reads atomic.Int64
	free := func(d string) (uint64, error) {
		reads.Add(1)
		// The disk loses what was reserved, like a real one.
		return f.free(d)
	}
	g := NewSpaceGuard(t.TempDir(), SpaceOptions{MinFree: 10 << 20, Ballast: -1, Interval: time.Hour, Free: free, Logger: quiet})
	n := 0
	for ; n < 100; n++ {
		if g.Reserve(1<<20) != nil {
			break
		}
		f.n.Add(-1 << 20) // what the write used
	}
	if n != 10 {
		t.Fatalf("%d MiB let through above a 10 MiB floor with 20 MiB free, want 10", n)
	}
	if r := reads.Load(); r > 3 {
		t.Fatalf("%d statfs readings for %d writes with a 1h interval", r, n)
	}
}

// TestSpaceGuardBallast: the ballast is created when there is room, and
// DiskFull (the ENOSPC callback) deletes it and refuses writes until the
// floor plus the ballast is free again, when the ballast comes back.
func TestSpaceGuardBallast(t *testing.T) {
	dir := t.TempDir()
	var f fakeFree
	f.n.Store(100 << 20)
	g := NewSpaceGuard(dir, SpaceOptions{MinFree: 8 << 20, Ballast: 1 << 20, Interval: 10 * time.Millisecond, Free: f.free, Logger: quiet})
	path := filepath.Join(dir, BallastName)
	if st, err := os.Stat(path); err != nil || st.Size() != 1<<20 {
		t.Fatalf("ballast: %v %v", st, err)
	}
	f.n.Store(512 << 10) // what is left when the filesystem says ENOSPC
	g.DiskFull()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("ballast still there after ENOSPC: %v", err)
	}
	if err := g.Reserve(1); !errors.Is(err, ErrStorageFull) || !strings.Contains(err.Error(), "ENOSPC") {
		t.Fatalf("after ENOSPC: %v", err)
	}
	f.n.Store(8<<20 + 512<<10) // the floor, but not the ballast too
	time.Sleep(15 * time.Millisecond)
	if err := g.Reserve(1); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("resumed without room for the ballast: %v", err)
	}
	f.n.Store(100 << 20)
	eventually(t, "writes resume", func() bool { return g.Reserve(1) == nil })
	if st, err := os.Stat(path); err != nil || st.Size() != 1<<20 {
		t.Fatalf("ballast not re-created: %v %v", st, err)
	}
}

// TestPebbleRefusesBelowFloor runs the real store on the real disk with
// the floor set above what is free: writes are refused with
// ErrStorageFull, reads go on, Health says why; more free space (an
// injected free-space function on top of statfs) resumes writes.
func TestPebbleRefusesBelowFloor(t *testing.T) {
	dir := t.TempDir()
	var extra atomic.Int64 // bytes the guard sees on top of the real free space
	free := func(d string) (uint64, error) {
		n, err := StatfsFree(d)
		return n + uint64(extra.Load()), err
	}
	p, err := OpenPebble(dir, PebbleOptions{Logger: quiet, Space: SpaceOptions{MinFree: 1 << 50, Ballast: -1, Interval: 10 * time.Millisecond, Free: free}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	g := Group("g")
	if _, err := p.Append(g, Message{From: "a", GroupID: "g", Content: "x"}); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("append below the floor: %v", err)
	}
	if err := p.Join("g", "a"); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("join below the floor: %v", err)
	}
	if !errors.Is(p.Health(), ErrStorageFull) {
		t.Fatalf("health: %v", p.Health())
	}
	if _, err := p.History(g, 0, 10, 0); err != nil {
		t.Fatalf("reads must go on: %v", err)
	}
	extra.Store(1 << 51)
	eventually(t, "health clears", func() bool { return p.Health() == nil })
	if _, err := p.Append(g, Message{From: "a", GroupID: "g", Content: "x"}); err != nil {
		t.Fatalf("append after space came back: %v", err)
	}
	if pg, err := p.History(g, 0, 10, 0); err != nil || len(pg.Messages) != 1 {
		t.Fatalf("history: %v %v", pg, err)
	}
}

// enospcFS fails every write and sync of a WAL file with ENOSPC while
// full is set, as a disk filled by someone else would.
type enospcFS struct {
	vfs.FS
	full    atomic.Bool
	hang    atomic.Bool   // writes and syncs block until release is closed (a wedged disk)
	release chan struct{} // set before hang
}

func (fs *enospcFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return &enospcFile{File: f, fs: fs}, nil
}

func (fs *enospcFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs *enospcFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, c)
	return fs.wrap(name, f, err)
}

type enospcFile struct {
	vfs.File
	fs *enospcFS
}

func (f *enospcFile) err() error {
	if f.fs.hang.Load() {
		<-f.fs.release
	}
	if f.fs.full.Load() {
		return &os.PathError{Op: "write", Path: "wal", Err: syscall.ENOSPC}
	}
	return nil
}

func (f *enospcFile) Write(p []byte) (int, error) {
	if err := f.err(); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *enospcFile) Sync() error {
	if err := f.err(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *enospcFile) SyncData() error {
	if err := f.err(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *enospcFile) SyncTo(n int64) (bool, error) {
	if err := f.err(); err != nil {
		return false, err
	}
	return f.File.SyncTo(n)
}

// TestPebbleWALFullNoPanic fails Pebble's WAL writes with ENOSPC behind
// the guard's back (no ballast to release). Pebble treats a failed WAL
// write as fatal (Logger.Fatalf "fatal commit error", or a panic out of
// the commit pipeline); the store must instead refuse the write with
// ErrStorageFull, stay readable, report itself broken, refuse later
// writes without touching Pebble again, reopen by itself once the disk
// takes writes again, and close within its timeout.
func TestPebbleWALFullNoPanic(t *testing.T) {
	dir := t.TempDir()
	fs := &enospcFS{FS: vfs.Default}
	guard := NewSpaceGuard(dir, SpaceOptions{Ballast: -1, Logger: quiet})
	p, err := openFS(dir, fs, guard, PebbleOptions{Logger: quiet, Queue: 16, MaxBatch: 16, Now: time.Now, CloseTimeout: 2 * time.Second, WriteTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	g := Group("g")
	if _, err := p.Append(g, Message{From: "a", GroupID: "g", Content: "before"}); err != nil {
		t.Fatal(err)
	}
	fs.full.Store(true)
	if _, err := p.Append(g, Message{From: "a", GroupID: "g", Content: "lost"}); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("append on a full WAL: %v", err)
	}
	if !errors.Is(p.Health(), ErrStorageFull) {
		t.Fatalf("health: %v", p.Health())
	}
	done := make(chan error, 1)
	go func() {
		_, err := p.Append(g, Message{From: "a", GroupID: "g", Content: "again"})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, ErrStorageFull) {
			t.Fatalf("append on a broken store: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("append on a broken store hangs")
	}
	// Reads go on. (Pebble applies a batch to its memtable before the WAL
	// sync fails, so the refused message may show in history until a
	// restart, which drops it: it was never durable.)
	if pg, err := p.History(g, 0, 10, 0); err != nil || len(pg.Messages) == 0 || pg.Messages[0].Content != "before" {
		t.Fatalf("history after the failure: %+v %v", pg, err)
	}
	// Space back: the writer reopens the database by itself and writes
	// resume, with what was acknowledged before.
	fs.full.Store(false)
	eventually(t, "writes resume", func() bool {
		_, err := p.Append(g, Message{From: "a", GroupID: "g", Content: "after"})
		return err == nil
	})
	if p.Health() != nil {
		t.Fatalf("health after reopening: %v", p.Health())
	}
	pg, err := p.History(g, 0, 10, 0)
	if err != nil || pg.Messages[0].Content != "before" || pg.Messages[len(pg.Messages)-1].Content != "after" {
		t.Fatalf("history after reopening: %+v %v", pg, err)
	}
	for _, m := range pg.Messages {
		if m.Content == "lost" || m.Content == "again" {
			t.Fatalf("a refused message survived the reopen: %+v", pg)
		}
	}
	start := time.Now()
	_ = p.Close()
	if d := time.Since(start); d > p.closeTimeout+time.Second {
		t.Fatalf("close took %v", d)
	}
}

// TestPebbleLoggerRateLimit: Pebble retries a failing flush at once and
// logs each failure; one format is logged at most once per LogInterval.
func TestPebbleLoggerRateLimit(t *testing.T) {
	var lines atomic.Int64
	h := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		lines.Add(1)
		return len(p), nil
	}), nil))
	g := &pebbleLogger{l: h}
	for i := range 10000 {
		g.Errorf("background error: %d", i)
	}
	g.Errorf("another error %d", 1)
	if n := lines.Load(); n != 2 {
		t.Fatalf("%d lines for 10000 repeated errors and one other, want 2", n)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestOpenFullDiskRefused: opening a new store on a full disk, or
// reopening a store whose log must be replayed
// (Pebble flushes it during Open and retries a failing flush forever) on
// a disk without room for it fails at once with ErrStorageFull instead of
// hanging; with room again it opens with every acknowledged write.
func TestOpenFullDiskRefused(t *testing.T) {
	dir := t.TempDir()
	var hide atomic.Int64
	free := func(d string) (uint64, error) {
		n, err := StatfsFree(d)
		return uint64(max(int64(n)-hide.Load(), 0)), err
	}
	o := PebbleOptions{Logger: quiet, Space: SpaceOptions{Ballast: -1, Free: free}}
	hide.Store(1 << 62)
	if _, err := OpenPebble(t.TempDir(), o); !errors.Is(err, ErrStorageFull) {
		t.Fatalf("open of a new store on a full disk: %v", err) // Pebble would fail its MANIFEST write
	}
	hide.Store(0)
	p, err := OpenPebble(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(Group("g"), Message{From: "a", GroupID: "g", Content: "kept"}); err != nil {
		t.Fatal(err)
	}
	// Leave the log unflushed, as a crash would.
	p.mu.Lock()
	p.closed = true
	close(p.ops)
	p.mu.Unlock()
	<-p.wdone
	_ = p.db.Close()
	if logBytes(dir) == 0 {
		t.Fatal("no log to replay")
	}
	hide.Store(1 << 62)
	start := time.Now()
	if _, err := OpenPebble(dir, o); !errors.Is(err, ErrStorageFull) || time.Since(start) > 2*time.Second {
		t.Fatalf("open on a full disk: %v after %v", err, time.Since(start))
	}
	hide.Store(0)
	p, err = OpenPebble(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if pg, err := p.History(Group("g"), 0, 10, 0); err != nil || len(pg.Messages) != 1 {
		t.Fatalf("after reopening: %+v %v", pg, err)
	}
}

// TestPebbleWedgedDiskBounded: a disk whose WAL writes never return (a
// wedged device) must not hang callers or Close: a write gives up after
// WriteTimeout with ErrWriteTimeout, and Close returns an error after
// CloseTimeout.
func TestPebbleWedgedDiskBounded(t *testing.T) {
	dir := t.TempDir()
	fs := &enospcFS{FS: vfs.Default, release: make(chan struct{})}
	t.Cleanup(func() { close(fs.release) }) // let the stuck goroutines go
	guard := NewSpaceGuard(dir, SpaceOptions{Ballast: -1, Logger: quiet})
	p, err := openFS(dir, fs, guard, PebbleOptions{Logger: quiet, Queue: 16, MaxBatch: 16, Now: time.Now,
		CloseTimeout: 500 * time.Millisecond, WriteTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fs.hang.Store(true)
	start := time.Now()
	if _, err := p.Append(Group("g"), Message{From: "a", GroupID: "g", Content: "x"}); !errors.Is(err, ErrWriteTimeout) {
		t.Fatalf("append on a wedged disk: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("append took %v", d)
	}
	start = time.Now()
	if err := p.Close(); err == nil || !strings.Contains(err.Error(), "gave up") {
		t.Fatalf("close on a wedged disk: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("close took %v", d)
	}
	if _, err := p.Append(Group("g"), Message{From: "a", GroupID: "g", Content: "y"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: %v", err)
	}
}
