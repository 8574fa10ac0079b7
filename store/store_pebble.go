package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// PebbleOptions configures OpenPebble.
type PebbleOptions struct {
	Logger   *slog.Logger     // Pebble's own log lines go here at debug level
	Queue    int              // pending writes before Append blocks (default 4096)
	MaxBatch int              // writes per group commit at most (default 1024)
	Now      func() time.Time // clock for message IDs (default time.Now)

	// Space is the free-space guard's settings (SpaceOptions.MinFree is
	// --store-min-free); a zero value has no floor but still turns ENOSPC
	// into ErrStorageFull.
	Space SpaceOptions
	// CloseTimeout bounds Close (default 5s): past it Close gives up,
	// logs and returns an error. Acknowledged writes are in the fsync'd
	// WAL, so giving up loses none.
	CloseTimeout time.Duration
	// WriteTimeout bounds how long a write waits to be durable (default
	// 10s); past it the caller gets ErrWriteTimeout.
	WriteTimeout time.Duration
}

// DefaultCloseTimeout is PebbleOptions.CloseTimeout's default.
const DefaultCloseTimeout = 5 * time.Second

// Pebble is the embedded durable Store on github.com/cockroachdb/pebble.
// Reads go straight to the database; writes go through one writer
// goroutine that takes every write pending at once, applies them as one
// batch and commits it with a single fsync (pebble.Sync), then wakes the
// waiting callers.
//
// A full disk never crashes or wedges it: before each batch the writer
// asks its SpaceGuard (a free-space floor, re-read at most every 200ms)
// and refuses the whole batch with ErrStorageFull below the floor; an
// ENOSPC that still reaches Pebble releases the guard's ballast so that
// Pebble's retry succeeds (Pebble treats a failed WAL or MANIFEST write as
// fatal). Should Pebble still fail fatally (its Logger.Fatalf, or a panic
// out of Batch.Commit), the store becomes broken: writes are refused with
// that error, reads go on, and Health reports it. If the cause was a full
// disk, the writer reopens the database (replaying its log) once the guard
// sees space again; a database that does not close stays broken until a
// restart.
type Pebble struct {
	db    *pebble.DB
	dir   string
	now   func() time.Time
	ops   chan *op
	max   int
	wdone chan struct{} // closed when the writer has exited
	quit  chan struct{} // closed when Close starts: submit stops waiting for queue room
	gone  chan struct{} // closed when Close gave up: waiters stop waiting
	guard *SpaceGuard
	fs    vfs.FS // what guard wraps

	// db and plog are replaced by the writer when it reopens a database
	// broken by a full disk (maybeReopen); readers hold dbMu for reading.
	dbMu         sync.RWMutex
	plog         *pebbleLogger
	nextReopen   time.Time // writer only
	reopenFails  int       // writer only: failed reopens in a row (backoff)
	log          *slog.Logger
	closeTimeout time.Duration
	writeTimeout time.Duration

	mu     sync.RWMutex // guards closed; held for reading by every call
	closed bool

	closeOnce sync.Once
	closeErr  error

	lastID  ID // writer only
	batches atomic.Int64
	writes  atomic.Int64
}

type opKind uint8

const (
	opAppend opKind = iota
	opJoin
	opLeave
)

// op is one pending write; done is closed once it is durable or failed.
type op struct {
	kind        opKind
	conv        Conv
	msg         Message
	group, user string
	err         error
	done        chan struct{}
}

// OpenPebble opens (creating if needed) the store in dir.
func OpenPebble(dir string, o PebbleOptions) (*Pebble, error) {
	if o.Queue <= 0 {
		o.Queue = 4096
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.CloseTimeout <= 0 {
		o.CloseTimeout = DefaultCloseTimeout
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Space.Logger == nil {
		o.Space.Logger = o.Logger
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	return openFS(dir, vfs.Default, NewSpaceGuard(dir, o.Space), o)
}

// openFS opens the store in dir on fs (tests inject faults there) behind
// guard; o has its defaults.
func openFS(dir string, fs vfs.FS, guard *SpaceGuard, o PebbleOptions) (*Pebble, error) {
	p := &Pebble{dir: dir, now: o.Now, ops: make(chan *op, o.Queue), max: o.MaxBatch,
		wdone: make(chan struct{}), quit: make(chan struct{}), gone: make(chan struct{}),
		guard: guard, fs: fs, log: o.Logger, closeTimeout: o.CloseTimeout, writeTimeout: o.WriteTimeout}
	db, plog, err := p.openDB()
	if err != nil {
		return nil, err
	}
	p.db, p.plog = db, plog
	v, closer, err := db.Get(keyLastID)
	switch {
	case err == nil:
		if len(v) == 8 {
			p.lastID = idFromKey(v) // stored inverted like keys
		}
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	go p.writer()
	return p, nil
}

// openDB opens the database with a new logger.
func (p *Pebble) openDB() (*pebble.DB, *pebbleLogger, error) {
	// Opening writes a new log and MANIFEST (a failed MANIFEST write is
	// fatal to Pebble) and flushes the log left by the last run (Pebble
	// retries a failing flush forever): on a disk without room for them,
	// refuse now (the caller retries later) rather than fail or hang.
	if need := logBytes(p.dir) + 1<<20; p.guard.Free() < need {
		return nil, nil, fmt.Errorf("open store %s: %w: %s free, opening needs %s", p.dir, ErrStorageFull, mib(p.guard.Free()), mib(need))
	}
	plog := &pebbleLogger{l: p.log}
	db, err := openBounded(p.dir, &pebble.Options{Logger: plog, FS: p.guard.FS(p.fs)}, p.closeTimeout*2)
	if err != nil {
		if isENOSPC(err) && !errors.Is(err, ErrStorageFull) {
			err = fmt.Errorf("%w: %w", ErrStorageFull, err)
		}
		return nil, nil, fmt.Errorf("open store %s: %w", p.dir, err)
	}
	return db, plog, nil
}

// maybeReopen replaces a database broken by a full disk once the guard
// sees space again (at most once a second, backing off to 30s while it
// fails): the old one is closed (given
// up after the close timeout, and then writes stay refused until a
// restart) and the store opened again, which replays its log. Writer
// only.
func (p *Pebble) maybeReopen() {
	f := p.plog.fatal.Load()
	if f == nil || !errors.Is(*f, ErrStorageFull) || time.Now().Before(p.nextReopen) || p.guard.Err() != nil {
		return
	}
	p.nextReopen = time.Now().Add(min(time.Second<<min(p.reopenFails, 5), 30*time.Second))
	p.dbMu.Lock()
	defer p.dbMu.Unlock()
	if p.db != nil {
		done := make(chan error, 1)
		go func(db *pebble.DB) { done <- closeDB(db) }(p.db)
		select {
		case <-done:
		case <-time.After(p.closeTimeout):
			p.db = nil // closing: not to be read any more
			p.nextReopen = time.Now().Add(100 * 365 * 24 * time.Hour)
			p.log.Error("store: the database broken by a full disk does not close; reads and writes refused until restart", "dir", p.dir)
			return
		}
		p.db = nil // reads fail with the fatal error until the open succeeds
	}
	db, plog, err := p.openDB()
	if err != nil {
		p.reopenFails++
		p.log.Warn("store: reopening after a full disk failed; retrying", "dir", p.dir, "err", err, "next", time.Until(p.nextReopen).Round(time.Second))
		return
	}
	p.db, p.plog, p.reopenFails = db, plog, 0
	p.log.Info("store: reopened after a full disk, writes resumed", "dir", p.dir)
}

func closeDB(db *pebble.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("pebble close: %v", r)
		}
	}()
	return db.Close()
}

// logBytes is the size of the WAL files in dir.
func logBytes(dir string) int64 {
	var n int64
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), ".log") {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
	}
	return n
}

// openBounded is openPebble giving up after d (a disk that filled during
// the open); a database that opens later is closed.
func openBounded(dir string, o *pebble.Options, d time.Duration) (*pebble.DB, error) {
	type result struct {
		db  *pebble.DB
		err error
	}
	ch := make(chan result, 1)
	go func() {
		db, err := openPebble(dir, o)
		ch <- result{db, err}
	}()
	select {
	case r := <-ch:
		return r.db, r.err
	case <-time.After(d):
		go func() {
			if r := <-ch; r.db != nil {
				_ = r.db.Close()
			}
		}()
		return nil, fmt.Errorf("%w: opening did not finish within %v", ErrStorageFull, d)
	}
}

// openPebble is pebble.Open with its fatal errors (Logger.Fatalf, which
// pebbleLogger turns into an error, or a panic) returned as errors.
func openPebble(dir string, o *pebble.Options) (db *pebble.DB, err error) {
	plog := o.Logger.(*pebbleLogger)
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, fmt.Errorf("pebble: %v", r)
		}
		if f := plog.fatal.Load(); f != nil && err == nil {
			if db != nil {
				_ = db.Close()
			}
			db, err = nil, *f
		}
	}()
	return pebble.Open(dir, o)
}

// Guard is the store's free-space guard.
func (p *Pebble) Guard() *SpaceGuard { return p.guard }

// Health is nil while the store takes writes, else why it refuses them
// (free space below the floor, a full disk, a fatal Pebble error). Never
// blocks.
func (p *Pebble) Health() error {
	if !p.dbMu.TryRLock() {
		return fmt.Errorf("%w: the store is reopening after a full disk", ErrStorageFull)
	}
	f := p.plog.fatal.Load()
	p.dbMu.RUnlock()
	if f != nil {
		return *f
	}
	return p.guard.Err()
}

// Stats reports how many group commits ran and how many writes they held.
func (p *Pebble) Stats() (batches, writes int64) { return p.batches.Load(), p.writes.Load() }

// submit queues o for the writer and waits until it is durable.
func (p *Pebble) submit(o *op) error {
	o.done = make(chan struct{})
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	select {
	case p.ops <- o: // the writer keeps draining, so Close waits at most one batch
	case <-p.quit: // unless it is stuck: Close must not wait for the queue
		p.mu.RUnlock()
		return ErrClosed
	}
	p.mu.RUnlock()
	t := time.NewTimer(p.writeTimeout)
	defer t.Stop()
	select {
	case <-o.done:
		return o.err
	case <-p.gone:
		return ErrClosed
	case <-t.C:
		return ErrWriteTimeout
	}
}

// ErrWriteTimeout is returned by a write that was not durable within
// PebbleOptions.WriteTimeout (a stalled disk): it may still be applied
// later.
var ErrWriteTimeout = errors.New("store write timed out")

func (p *Pebble) Append(conv Conv, m Message) (Message, error) {
	if !conv.valid() || !ValidName(m.From) {
		return m, ErrInvalid
	}
	o := &op{kind: opAppend, conv: conv, msg: m}
	if err := p.submit(o); err != nil {
		return m, err // o may still be the writer's (a timeout): do not read it
	}
	return o.msg, nil
}

func (p *Pebble) Join(group, user string) error {
	if !ValidName(group) || !ValidName(user) {
		return ErrInvalid
	}
	return p.submit(&op{kind: opJoin, group: group, user: user})
}

func (p *Pebble) Leave(group, user string) error {
	if !ValidName(group) || !ValidName(user) {
		return ErrInvalid
	}
	return p.submit(&op{kind: opLeave, group: group, user: user})
}

// writer is the single goroutine that applies writes, in arrival order.
func (p *Pebble) writer() {
	defer close(p.wdone)
	batch := make([]*op, 0, p.max)
	for first := range p.ops {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < p.max {
			select {
			case o, ok := <-p.ops:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		p.commit(batch)
		clear(batch)
	}
}

// commit applies ops as one batch with one fsync and releases the callers.
func (p *Pebble) commit(ops []*op) {
	p.maybeReopen()
	if p.db == nil {
		for _, o := range ops {
			o.err = *p.plog.fatal.Load()
			close(o.done)
		}
		return
	}
	indexed := false
	for _, o := range ops {
		indexed = indexed || o.kind != opAppend
	}
	var b *pebble.Batch
	if indexed { // membership checks must see earlier writes of this batch
		b = p.db.NewIndexedBatch()
	} else {
		b = p.db.NewBatch()
	}
	appended := false
	for _, o := range ops {
		switch o.kind {
		case opAppend:
			p.lastID = nextID(p.lastID, p.now())
			o.msg.ID = p.lastID
			_ = b.Set(messageKey(o.conv, o.msg.ID), encodeMessage(&o.msg), nil)
			if !o.conv.IsGroup() {
				_ = b.Set(pairKey(tagPartner, o.conv.a, o.conv.b), nil, nil)
				_ = b.Set(pairKey(tagPartner, o.conv.b, o.conv.a), nil, nil)
			}
			appended = true
		case opJoin, opLeave:
			o.err = p.applyMembership(b, o)
		}
	}
	if appended {
		var v [8]byte
		putID(v[:], ^p.lastID)
		_ = b.Set(keyLastID, v[:], nil)
	}
	err := p.writable(int64(b.Len()))
	if err == nil && !b.Empty() {
		err = p.apply(b, pebble.Sync)
	}
	_ = b.Close()
	p.batches.Add(1)
	p.writes.Add(int64(len(ops)))
	for _, o := range ops {
		if err != nil && o.err == nil {
			o.err = fmt.Errorf("store commit: %w", err)
		}
		close(o.done)
	}
}

// writable checks that a batch of n bytes may be committed: the store is
// not broken and the guard lets 2n through (the WAL now, an sstable at the
// next flush).
func (p *Pebble) writable(n int64) error {
	if f := p.plog.fatal.Load(); f != nil {
		return *f
	}
	return p.guard.Reserve(2*n + 4096)
}

// apply commits b. Pebble reports a failed WAL write by Logger.Fatalf
// (after which Commit returns nil), or by a panic: both come back as the
// error, and the store is broken from then on (Pebble's commit pipeline
// may be left locked: it must not be used again).
func (p *Pebble) apply(b *pebble.Batch, opts *pebble.WriteOptions) error {
	return commitLogged(p.plog, b, opts)
}

// commitLogged commits b on a database opened with plog as its Logger,
// returning Pebble's fatal errors (Fatalf, a panic) as errors; once one
// happened it refuses every later commit. Every store commits through it.
func commitLogged(plog *pebbleLogger, b *pebble.Batch, opts *pebble.WriteOptions) (err error) {
	if f := plog.fatal.Load(); f != nil {
		return *f
	}
	defer func() {
		if r := recover(); r != nil {
			err = plog.broke(fmt.Errorf("pebble: %v", r))
		}
		if f := plog.fatal.Load(); f != nil && err == nil {
			err = *f
		}
	}()
	return b.Commit(opts)
}

func (p *Pebble) applyMembership(b *pebble.Batch, o *op) error {
	mk := pairKey(tagMember, o.group, o.user)
	_, closer, err := b.Get(mk)
	switch {
	case err == nil:
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return err
	}
	member := err == nil
	if o.kind == opJoin {
		if member {
			return ErrAlreadyMember
		}
		_ = b.Set(mk, nil, nil)
		return b.Set(pairKey(tagUser, o.user, o.group), nil, nil)
	}
	if !member {
		return ErrNotMember
	}
	_ = b.Delete(mk, nil)
	return b.Delete(pairKey(tagUser, o.user, o.group), nil)
}

// read runs fn unless the store is closed.
func (p *Pebble) read(fn func() error) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	p.dbMu.RLock()
	defer p.dbMu.RUnlock()
	if p.db == nil {
		return *p.plog.fatal.Load()
	}
	return fn()
}

func (p *Pebble) History(conv Conv, before ID, limit, maxBytes int) (Page, error) {
	var pg Page
	if !conv.valid() {
		return pg, ErrInvalid
	}
	err := p.read(func() error {
		prefix := historyPrefix(conv)
		it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
		if err != nil {
			return err
		}
		defer it.Close()
		if before != 0 {
			k := messageKey(conv, before)
			if !it.SeekGE(k) || !bytes.Equal(it.Key(), k) {
				return ErrUnknownMessage
			}
			it.Next()
		} else {
			it.First()
		}
		size := 0
		for ; it.Valid(); it.Next() {
			if len(pg.Messages) == limit || (maxBytes > 0 && size > 0 && size+len(it.Value()) > maxBytes) {
				pg.HasMore = true
				break
			}
			m := Message{ID: idFromKey(it.Key())}
			if err := decodeMessage(it.Value(), &m); err != nil {
				return err
			}
			size += len(it.Value())
			pg.Messages = append(pg.Messages, m)
		}
		if err := it.Error(); err != nil {
			return err
		}
		slices.Reverse(pg.Messages)
		return nil
	})
	return pg, err
}

func (p *Pebble) IsMember(group, user string) (bool, error) {
	var ok bool
	err := p.read(func() error {
		_, closer, err := p.db.Get(pairKey(tagMember, group, user))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ok = true
		return closer.Close()
	})
	return ok, err
}

// scanNames lists the final names of the keys under namePrefix(tag, x).
func (p *Pebble) scanNames(tag byte, x string, fn func(string)) error {
	prefix := namePrefix(tag, x)
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if name, ok := lastName(it.Key(), len(prefix)); ok {
			fn(name)
		}
	}
	return it.Error()
}

func (p *Pebble) Members(group string) ([]string, error) {
	var out []string
	err := p.read(func() error {
		return p.scanNames(tagMember, group, func(u string) { out = append(out, u) })
	})
	slices.Sort(out) // keys are length-prefixed: they scan shortest first
	return out, err
}

func (p *Pebble) Contacts(user string) ([]string, error) {
	set := map[string]struct{}{}
	err := p.read(func() error {
		var groups []string
		if err := p.scanNames(tagUser, user, func(g string) { groups = append(groups, g) }); err != nil {
			return err
		}
		for _, g := range groups {
			if err := p.scanNames(tagMember, g, func(u string) { set[u] = struct{}{} }); err != nil {
				return err
			}
		}
		return p.scanNames(tagPartner, user, func(u string) { set[u] = struct{}{} })
	})
	delete(set, user)
	out := make([]string, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	slices.Sort(out)
	return out, err
}

// Close stops new calls, lets the writer finish every queued write, then
// flushes the memtable and closes the database.
func (p *Pebble) Close() error {
	p.closeOnce.Do(func() {
		close(p.quit)
		p.mu.Lock()
		p.closed = true
		close(p.ops)
		p.mu.Unlock()
		done := make(chan error, 1)
		go func() { done <- p.finish() }()
		select {
		case p.closeErr = <-done:
		case <-time.After(p.closeTimeout):
			close(p.gone)
			p.closeErr = fmt.Errorf("store %s: close gave up after %v (acknowledged writes are in the WAL)", p.dir, p.closeTimeout)
			p.log.Error("store: close gave up", "dir", p.dir, "after", p.closeTimeout, "health", p.Health())
		}
	})
	return p.closeErr
}

// finish waits for the writer, then flushes (unless writes are refused:
// a flush would fail or stall on a full disk; the WAL has everything) and
// closes the database. It may never return on a wedged database: Close
// bounds it.
func (p *Pebble) finish() (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("store close: %v", r)
		}
	}()
	<-p.wdone
	select {
	case <-p.gone:
		// Close gave up: leave the database alone. (A Flush after a
		// late WAL error would make Pebble's rotateWAL panic with its
		// mutex unlocked: a fatal runtime error, not a recoverable panic.)
		return nil
	default:
	}
	if p.db == nil {
		return nil
	}
	if p.Health() == nil {
		err = p.db.Flush()
	}
	if cerr := p.db.Close(); cerr != nil && err == nil {
		err = cerr
	}
	if err != nil {
		err = fmt.Errorf("store %s close: %v", p.dir, err) // %v: without Pebble's stack trace
	}
	return err
}

// pebbleLogger sends Pebble's log lines to slog: info at debug level,
// errors at error level but each format at most once per LogInterval
// (with the number of lines left out), since Pebble retries a failing
// flush or compaction at once and logs every failure. Fatalf does not
// exit or panic: it records the store as broken (see Pebble).
type pebbleLogger struct {
	l *slog.Logger

	mu    sync.Mutex // guards lines
	lines map[string]*logLine

	fatal atomic.Pointer[error] // set once by Fatalf or a recovered panic
}

type logLine struct {
	next    time.Time
	dropped int
}

func (g *pebbleLogger) Infof(f string, a ...any) { g.l.Debug("pebble: " + fmt.Sprintf(f, a...)) }

func (g *pebbleLogger) Errorf(f string, a ...any) {
	now := time.Now()
	g.mu.Lock()
	if g.lines == nil {
		g.lines = map[string]*logLine{}
	}
	ln := g.lines[f]
	if ln == nil {
		if len(g.lines) > 1000 {
			clear(g.lines)
		}
		ln = &logLine{}
		g.lines[f] = ln
	}
	if now.Before(ln.next) {
		ln.dropped++
		g.mu.Unlock()
		return
	}
	dropped := ln.dropped
	ln.next, ln.dropped = now.Add(LogInterval), 0
	g.mu.Unlock()
	g.l.Error("pebble: "+fmt.Sprintf(f, a...), "similar_lines_dropped", dropped)
}

func (g *pebbleLogger) Fatalf(f string, a ...any) {
	if !strings.HasPrefix(f, "pebble:") {
		f = "pebble: " + f
	}
	err := g.broke(fmt.Errorf(f, a...))
	now := time.Now().UnixNano()
	if next := fatalLogNext.Load(); now >= next && fatalLogNext.CompareAndSwap(next, now+int64(LogInterval)) {
		g.l.Error("store broken: writes refused (reopened when space returns if the disk was full)", "err", err)
	}
}

// fatalLogNext is when the next Fatalf line may be logged, process-wide
// (every open attempt on a full disk has its own logger).
var fatalLogNext atomic.Int64

// broke records err as the store's fatal error (the first one wins; one
// caused by ENOSPC wraps ErrStorageFull) and returns the recorded one.
func (g *pebbleLogger) broke(err error) error {
	if isENOSPC(err) {
		err = fmt.Errorf("%w: %w", ErrStorageFull, err)
	}
	g.fatal.CompareAndSwap(nil, &err)
	return *g.fatal.Load()
}

func isENOSPC(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || strings.Contains(err.Error(), "no space left on device")
}
