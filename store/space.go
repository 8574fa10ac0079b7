package store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrStorageFull is the error of a write refused because the store's disk
// has less free space than its floor (SpaceGuard), or returned ENOSPC.
var ErrStorageFull = errors.New("storage full")

// SpaceOptions configures a SpaceGuard.
type SpaceOptions struct {
	// MinFree is the floor in bytes: writes are refused while the free
	// space (statfs f_bavail) minus what was written since the last statfs
	// is below it. 0 disables the floor; ENOSPC is still handled.
	MinFree int64
	// Ballast is the size of a file the guard keeps in the directory and
	// deletes the moment the filesystem returns ENOSPC, so that the write
	// that hit it (a WAL sync, a MANIFEST update, which Pebble treats as
	// fatal) succeeds on its retry. 0: MinFree/4, at most 32 MiB; <0: none.
	Ballast int64
	// Interval is how often free space is read at most (default 200ms).
	Interval time.Duration
	// Free returns the bytes available in dir (default: statfs).
	Free   func(dir string) (uint64, error)
	Logger *slog.Logger
}

// BallastName is the name of the ballast file in a guarded directory.
const BallastName = "partyline-ballast"

// SpaceGuard decides whether a directory may take more writes: it keeps a
// free-space floor and a ballast file, and turns a full disk into
// ErrStorageFull for the writer instead of a crash. Free space is read with
// statfs at most once per Interval; in between, Reserve subtracts what it
// let through, so a burst cannot overshoot the floor. Once refusing, the
// guard resumes by itself when a later reading shows the floor (and room
// to re-create the ballast) again.
//
// Concurrency: safe from any goroutine. Reserve may call statfs and write
// the ballast: store writers only, never an event loop. Err never blocks
// (at most one statfs, skipped if Reserve holds the lock).
type SpaceGuard struct {
	dir     string
	min     int64
	ballast int64
	every   time.Duration
	free    func(string) (uint64, error)
	log     *slog.Logger

	mu         sync.Mutex // guards the following
	at         time.Time  // last reading
	avail      int64      // bytes free at the last reading
	spent      int64      // bytes let through since
	hasBallast bool
	enospc     bool      // the filesystem returned ENOSPC since the last good reading
	refused    int64     // refusals since the last log line
	nextLog    time.Time // no refusal line before
	full       atomic.Bool
	err        atomic.Pointer[error] // non-nil while refusing
}

// NewSpaceGuard returns a guard of dir (which must exist). It takes a first
// reading and, if there is room above the floor, writes the ballast.
func NewSpaceGuard(dir string, o SpaceOptions) *SpaceGuard {
	if o.Interval <= 0 {
		o.Interval = 200 * time.Millisecond
	}
	if o.Free == nil {
		o.Free = StatfsFree
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Ballast == 0 {
		o.Ballast = min(o.MinFree/4, 32<<20)
	}
	g := &SpaceGuard{dir: dir, min: max(o.MinFree, 0), ballast: max(o.Ballast, 0), every: o.Interval, free: o.Free, log: o.Logger}
	if st, err := os.Stat(g.ballastPath()); err == nil && st.Size() >= g.ballast && g.ballast > 0 {
		g.hasBallast = true
	} else if g.ballast == 0 {
		_ = os.Remove(g.ballastPath()) // left by a run with a ballast
	}
	g.mu.Lock()
	g.readLocked(time.Now())
	if g.min > 0 && g.avail < g.min {
		g.setLocked(true, fmt.Sprintf("%s free, below the floor of %s", mib(g.avail), mib(g.min)))
	}
	if !g.hasBallast && g.ballast > 0 && g.avail-g.ballast >= g.min {
		g.makeBallastLocked()
	}
	g.mu.Unlock()
	return g
}

// StatfsFree is the space available to unprivileged users in dir's
// filesystem (statfs f_bavail × f_bsize).
func StatfsFree(dir string) (uint64, error) {
	var s syscall.Statfs_t
	if err := syscall.Statfs(dir, &s); err != nil {
		return 0, err
	}
	return s.Bavail * uint64(s.Bsize), nil
}

func (g *SpaceGuard) ballastPath() string { return filepath.Join(g.dir, BallastName) }

// FS wraps fs so that an ENOSPC from any write releases the ballast and
// puts the guard in the refusing state before the write is retried once
// (pebble/vfs.OnDiskFull). Pass the result as pebble.Options.FS.
func (g *SpaceGuard) FS(fs vfs.FS) vfs.FS { return vfs.OnDiskFull(fs, g.DiskFull) }

// DiskFull is the ENOSPC callback: it deletes the ballast, if any, so that
// the failed write can be retried, and refuses writes until space returns.
// Without a ballast to release it waits a little: the callback blocks the
// store's writes, which throttles Pebble's retries of a failing flush or
// compaction (it retries at once, without backoff).
func (g *SpaceGuard) DiskFull() {
	g.mu.Lock()
	g.enospc = true
	released := false
	if g.hasBallast {
		released = os.Remove(g.ballastPath()) == nil
		g.hasBallast = false
	}
	g.setLocked(true, "the disk is full (ENOSPC)")
	g.mu.Unlock()
	if released {
		g.log.Warn("store: disk full (ENOSPC): ballast released, writes refused until space returns", "dir", g.dir, "ballast", g.ballast)
		return
	}
	time.Sleep(250 * time.Millisecond)
}

// Reserve reports whether n more bytes may be written: nil, with n charged
// until the next reading, or an error wrapping ErrStorageFull.
func (g *SpaceGuard) Reserve(n int64) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := time.Now()
	fresh := false
	if now.Sub(g.at) >= g.every {
		g.readLocked(now)
		fresh = true
	}
	if !g.full.Load() && g.min > 0 && g.avail-g.spent-n < g.min && !fresh {
		g.readLocked(now) // the estimate may be stale: look again before refusing
	}
	if !g.full.Load() && g.min > 0 && g.avail-g.spent-n < g.min {
		g.setLocked(true, fmt.Sprintf("%s free, below the floor of %s", mib(g.avail-g.spent), mib(g.min)))
	}
	if g.full.Load() {
		g.refusedLocked(now)
		return *g.err.Load()
	}
	g.spent += n
	if !g.hasBallast && g.ballast > 0 && g.avail-g.spent-g.ballast >= g.min {
		g.makeBallastLocked()
	}
	return nil
}

// Err is nil while the guard lets writes through, else why it refuses
// them. It reads the free space again if the last reading is old, so that
// a health check sees space coming back without a write. Never blocks.
func (g *SpaceGuard) Err() error {
	if g.full.Load() && g.mu.TryLock() {
		if now := time.Now(); now.Sub(g.at) >= g.every {
			g.readLocked(now)
		}
		g.mu.Unlock()
	}
	if p := g.err.Load(); p != nil {
		return *p
	}
	return nil
}

// Free is the free space at the last reading, less what was let through
// since.
func (g *SpaceGuard) Free() int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.avail - g.spent
}

// readLocked takes a reading and leaves the refusing state if there is
// room for the floor, the ballast if it is missing, and (after ENOSPC)
// 1 MiB at least.
func (g *SpaceGuard) readLocked(now time.Time) {
	g.at, g.spent = now, 0
	f, err := g.free(g.dir)
	if err != nil {
		g.log.Warn("store: cannot read free space", "dir", g.dir, "err", err)
		return // keep the previous reading
	}
	g.avail = int64(min(f, 1<<62))
	if !g.full.Load() {
		return
	}
	need := g.min
	if !g.hasBallast {
		need += g.ballast
	}
	if g.enospc {
		need = max(need, 1<<20)
	}
	if g.avail >= need {
		g.enospc = false
		g.setLocked(false, "") // the next Reserve re-creates the ballast
	}
}

func (g *SpaceGuard) setLocked(full bool, why string) {
	was := g.full.Swap(full)
	if !full {
		g.err.Store(nil)
		if was {
			g.log.Info("store: free space is back, writes resumed", "dir", g.dir, "free", mib(g.avail), "floor", mib(g.min), "refused", g.refused)
			g.refused, g.nextLog = 0, time.Time{}
		}
		return
	}
	err := fmt.Errorf("%w: %s; writes refused", ErrStorageFull, why)
	g.err.Store(&err)
}

// refusedLocked counts a refusal and logs at most once per LogInterval
// while refusing.
func (g *SpaceGuard) refusedLocked(now time.Time) {
	g.refused++
	if now.Before(g.nextLog) {
		return
	}
	g.nextLog = now.Add(LogInterval)
	g.log.Warn("store: refusing writes", "dir", g.dir, "reason", *g.err.Load(), "refused", g.refused, "free", mib(g.avail-g.spent), "floor", mib(g.min))
	g.refused = 0
}

// LogInterval is how often a guard logs while it refuses writes.
const LogInterval = 10 * time.Second

// makeBallastLocked writes the ballast file (fallocate, else zeros); on
// failure there is no ballast.
func (g *SpaceGuard) makeBallastLocked() {
	p := g.ballastPath()
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return
	}
	err = syscall.Fallocate(int(f.Fd()), 0, 0, g.ballast)
	if err != nil && !errors.Is(err, syscall.ENOSPC) {
		err = writeZeros(f, g.ballast)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(p)
		return
	}
	g.hasBallast = true
	g.spent += g.ballast
}

func writeZeros(w io.Writer, n int64) error {
	buf := make([]byte, 1<<20)
	for n > 0 {
		k := min(n, int64(len(buf)))
		if _, err := w.Write(buf[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
