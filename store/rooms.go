package store

// Key layout of the RoomLog's database (one ordered scan loads everything;
// all records of a room are contiguous, so Delete is one range deletion and
// Trim another):
//
//	r <len:1> <code> m                 meta     (encodeRoomMeta)
//	r <len:1> <code> s                 state    (version byte + frame)
//	r <len:1> <code> h <seq:8 BE>      history  (encodeRoomEntry)

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// Payload is an encoded frame the RoomLog holds a reference to until it is
// committed: the caller Retain()s it before passing it to PutState or
// Append; the log calls Release exactly once when it is done with it
// (written into a batch, superseded, trimmed, dropped or refused).
type Payload interface {
	Payload() []byte
	Release()
}

// Seat is one member of a room.
type Seat struct{ ID, Token string }

// RoomMeta is a room's small, always-persisted description.
type RoomMeta struct {
	Code    string    // room code, 1..MaxRoomCode bytes
	Max     int       // maxClients
	Created time.Time // stored with nanosecond precision, without location
	Epoch   string    // random id of this incarnation of the room
	Seq     uint64    // per-room sequence number
	Seats   []Seat    // members in join order
}

// HistoryEntry is one frame of a room's recent history, as written.
type HistoryEntry struct {
	Seq   uint64
	From  string // "" = the server
	To    string // "" = broadcast
	At    time.Time
	Frame Payload // may be nil (empty frame)
}

// LoadedEntry is one history entry as loaded.
type LoadedEntry struct {
	Seq     uint64
	From    string
	To      string
	At      time.Time
	Payload []byte
}

// RoomRecord is one room as loaded.
type RoomRecord struct {
	RoomMeta
	State   []byte        // nil when none
	History []LoadedEntry // oldest first
}

// RoomLogOptions configures OpenRoomLog.
type RoomLogOptions struct {
	// Interval between commits (default 100 ms).
	Interval time.Duration
	// Logger for the log's and Pebble's lines (default slog.Default()).
	Logger *slog.Logger
	// MinFree is the free-space floor of the directory's file system in
	// bytes (default 64 MiB): a commit runs only while the free space is
	// at least MinFree plus the bytes pending; otherwise everything stays
	// pending and the commit is retried every Interval. After a commit
	// Pebble writes on its own (a WAL preallocated by 4.4 MiB steps, the
	// 4 MiB memtable flushed to a table, compactions), so a floor below
	// 16 MiB is raised to 16 MiB.
	MinFree uint64
	// MaxPending bounds the bytes held pending (frames plus a small
	// per-record overhead; default 64 MiB). Beyond it an Append is
	// dropped and acts as Trim(code, e.Seq) so that persisted history
	// never has a gap: history appended while the disk was full is lost,
	// meta, state and deletes never are.
	MaxPending int
}

// RoomLogStats is a snapshot of a RoomLog's counters.
type RoomLogStats struct {
	Rooms          int           // rooms with a meta record on disk (loaded + created - deleted)
	Batches        uint64        // batches committed (one fsync each)
	BytesWritten   uint64        // bytes of the committed batches
	PendingBytes   int64         // bytes waiting for the next commit
	PendingRooms   int           // rooms with changes waiting
	SkippedCommits uint64        // commits put off because free space was below the floor
	DroppedAppends uint64        // appends dropped (MaxPending crossed, invalid code, closed)
	Failures       uint64        // failed commits
	LowDisk        bool          // the last commit attempt found free space below the floor
	MaxCommit      time.Duration // longest commit (encode + write + fsync) so far
	LastError      string        // most recent failure or put-off commit, "" if none
}

// MaxRoomCode is the longest room code in bytes.
const MaxRoomCode = 255

// CloseTimeout bounds Close whatever the state of the disk.
const CloseTimeout = 5 * time.Second

// Errors returned by RoomLog.
var (
	// ErrLowDisk: free space is below the floor; changes stay pending.
	ErrLowDisk = errors.New("store: free space below the floor, room changes kept pending")
	// ErrCorruptRoom wraps the error of a room Load skipped.
	ErrCorruptRoom = errors.New("store: corrupt room record")
	// ErrRoomLogBroken: a commit failed inside Pebble; nothing more is written.
	ErrRoomLogBroken = errors.New("store: room log commit pipeline failed")
)

const (
	defaultRoomInterval = 100 * time.Millisecond
	defaultMinFree      = 64 << 20
	lowestMinFree       = 16 << 20
	defaultMaxPending   = 64 << 20
	recordOverhead      = 48 // pending-bytes charge per record besides its frame
)

// RoomLog persists party rooms in an embedded Pebble database of its own.
//
// Concurrency rules:
//
//   - PutMeta, PutState, Append, Trim and Delete are safe for concurrent
//     use and are meant to be called on event loops: each records the
//     change in memory under a mutex held for O(1) work (O(dropped) when a
//     Trim or Delete releases pending frames), makes no syscall, never
//     waits for the disk, and allocates nothing once the room has been
//     seen in an earlier interval.
//   - One background writer goroutine swaps out every pending change (an
//     O(1) swap under the same mutex) each Interval and commits it as one
//     Pebble batch with one fsync. A SIGKILL loses at most the changes of
//     the last Interval plus the duration of the commit in flight.
//   - Load must be called once, before the first write. Flush and Close
//     block on the disk: call them from a worker goroutine, never from an
//     event loop. Close returns within CloseTimeout whatever the disk does.
//   - Frames (Payload) are released by the writer once their bytes are
//     copied into the batch, or by the recording call when they are
//     superseded, trimmed or refused: exactly once in every case.
type RoomLog struct {
	db       *pebble.DB
	plog     *pebbleLogger // Pebble's log lines and fatal errors (commitLogged)
	dir      string
	log      *slog.Logger
	interval time.Duration
	maxPend  int64
	closeTO  time.Duration // CloseTimeout; tests shorten it
	minFree  atomic.Uint64
	// free reports the free bytes of dir's file system (tests replace it).
	free func(dir string) (uint64, error)

	mu      sync.Mutex
	cur     *pendingSet // changes since the last swap; guarded by mu
	spare   *pendingSet // writer only: the set being committed / recycled
	closed  bool        // guarded by mu
	written bool        // a write happened; guarded by mu

	flushReq chan chan error
	stop     chan struct{}
	wdone    chan struct{}

	knownMu sync.Mutex
	known   map[string]struct{} // codes with meta on disk (writer and Load)

	closeOnce sync.Once
	closeErr  error

	batches, bytesWritten, skipped, dropped, failures atomic.Uint64
	rooms, maxCommit                                  atomic.Int64
	lowDisk, broken                                   atomic.Bool
	lastErr                                           atomic.Pointer[string]

	// writer-only state
	key, key2 []byte
	val       []byte
	lowLogged time.Time
}

// pendingSet is every change recorded between two commits.
type pendingSet struct {
	rooms map[string]*roomPend
	free  []*roomPend
	bytes int64
}

// roomPend is one room's coalesced changes.
type roomPend struct {
	del      bool // delete everything of the room before the rest
	hasMeta  bool
	meta     RoomMeta
	hasState bool
	state    Payload // nil with hasState: clear
	hasTrim  bool
	trim     uint64
	hist     []HistoryEntry
}

func newPendingSet() *pendingSet { return &pendingSet{rooms: make(map[string]*roomPend)} }

// OpenRoomLog opens (creating if needed) the room log in dir and starts its
// writer.
func OpenRoomLog(dir string, o RoomLogOptions) (*RoomLog, error) {
	if o.Interval <= 0 {
		o.Interval = defaultRoomInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MinFree == 0 {
		o.MinFree = defaultMinFree
	}
	o.MinFree = max(o.MinFree, lowestMinFree)
	if o.MaxPending <= 0 {
		o.MaxPending = defaultMaxPending
	}
	// Opening writes a new log and MANIFEST and flushes the log left by
	// the last run: on a disk without room for them Pebble fails or
	// retries forever, so refuse at once (as the chat store does) and
	// bound the open in time.
	if free, err := StatfsFree(dir); err == nil && int64(free) < logBytes(dir)+1<<20 {
		return nil, fmt.Errorf("open room log %s: %w: %s free", dir, ErrStorageFull, mib(int64(free)))
	}
	plog := &pebbleLogger{l: o.Logger}
	db, err := openBounded(dir, &pebble.Options{Logger: plog}, 2*CloseTimeout)
	if err != nil {
		return nil, fmt.Errorf("open room log %s: %w", dir, err)
	}
	l := &RoomLog{
		db: db, plog: plog, dir: dir, log: o.Logger, interval: o.Interval, maxPend: int64(o.MaxPending), closeTO: CloseTimeout,
		free: StatfsFree, cur: newPendingSet(), spare: newPendingSet(),
		flushReq: make(chan chan error), stop: make(chan struct{}), wdone: make(chan struct{}),
		known: make(map[string]struct{}),
	}
	l.minFree.Store(o.MinFree)
	go l.writer()
	return l, nil
}

// room returns the pending record of code, creating it; l.mu held.
func (l *RoomLog) room(code string) *roomPend {
	p := l.cur
	if r := p.rooms[code]; r != nil {
		return r
	}
	var r *roomPend
	if n := len(p.free); n > 0 {
		r = p.free[n-1]
		p.free[n-1] = nil
		p.free = p.free[:n-1]
	} else {
		r = new(roomPend)
	}
	p.rooms[code] = r
	return r
}

// accept reports whether a write for code may be recorded; l.mu held.
func (l *RoomLog) accept(code string) bool {
	if l.closed || len(code) == 0 || len(code) > MaxRoomCode {
		return false
	}
	l.written = true
	return true
}

func release(p Payload) {
	if p != nil {
		p.Release()
	}
}

func payloadLen(p Payload) int64 {
	if p == nil {
		return 0
	}
	return int64(len(p.Payload()))
}

// dropHist releases the pending history entries with Seq <= through; l.mu held.
func (l *RoomLog) dropHist(r *roomPend, through uint64) {
	k := 0
	for i := range r.hist {
		e := &r.hist[i]
		if e.Seq <= through {
			l.cur.bytes -= recordOverhead + payloadLen(e.Frame)
			release(e.Frame)
			continue
		}
		r.hist[k] = *e
		k++
	}
	clear(r.hist[k:])
	r.hist = r.hist[:k]
}

// PutMeta records m as the room's meta; the latest call per code wins.
// The log owns m.Seats after the call.
func (l *RoomLog) PutMeta(m RoomMeta) {
	l.mu.Lock()
	if l.accept(m.Code) {
		r := l.room(m.Code)
		if !r.hasMeta {
			l.cur.bytes += recordOverhead
		}
		r.hasMeta, r.meta = true, m
	}
	l.mu.Unlock()
}

// PutState records the room's retained state frame (nil clears it); the
// latest call per code wins.
func (l *RoomLog) PutState(code string, state Payload) {
	l.mu.Lock()
	if !l.accept(code) {
		l.mu.Unlock()
		release(state)
		return
	}
	r := l.room(code)
	old := r.state
	if r.hasState {
		l.cur.bytes -= recordOverhead + payloadLen(old)
	}
	r.hasState, r.state = true, state
	l.cur.bytes += recordOverhead + payloadLen(state)
	l.mu.Unlock()
	release(old)
}

// Append records a history entry. Seqs of a room must grow. When more than
// MaxPending bytes are pending the entry is dropped and acts as
// Trim(code, e.Seq), so persisted history never has a gap.
func (l *RoomLog) Append(code string, e HistoryEntry) {
	l.mu.Lock()
	if !l.accept(code) {
		l.mu.Unlock()
		l.dropped.Add(1)
		release(e.Frame)
		return
	}
	r := l.room(code)
	if l.cur.bytes > l.maxPend {
		l.dropHist(r, e.Seq)
		r.hasTrim, r.trim = true, max(r.trim, e.Seq)
		l.mu.Unlock()
		l.dropped.Add(1)
		release(e.Frame)
		return
	}
	r.hist = append(r.hist, e)
	l.cur.bytes += recordOverhead + payloadLen(e.Frame)
	l.mu.Unlock()
}

// Trim allows the history entries of code with Seq <= throughSeq to be
// deleted; pending ones are dropped before they are ever written.
func (l *RoomLog) Trim(code string, throughSeq uint64) {
	l.mu.Lock()
	if l.accept(code) {
		r := l.room(code)
		l.dropHist(r, throughSeq)
		if !r.hasTrim {
			l.cur.bytes += recordOverhead
		}
		r.hasTrim, r.trim = true, max(r.trim, throughSeq)
	}
	l.mu.Unlock()
}

// Delete records that the room is gone: its meta, state and history are
// deleted, and so is every change of it still pending.
func (l *RoomLog) Delete(code string) {
	l.mu.Lock()
	if !l.accept(code) {
		l.mu.Unlock()
		return
	}
	r := l.room(code)
	l.dropHist(r, math.MaxUint64)
	st := r.state
	if r.hasState {
		l.cur.bytes -= recordOverhead + payloadLen(st)
	}
	if r.hasMeta {
		l.cur.bytes -= recordOverhead
	}
	if r.hasTrim {
		l.cur.bytes -= recordOverhead
	}
	if !r.del {
		l.cur.bytes += recordOverhead
	}
	*r = roomPend{del: true, hist: r.hist}
	l.mu.Unlock()
	release(st)
}

// Flush commits everything pending now and waits until it is durable. It
// returns ErrLowDisk (changes kept pending) when free space is below the
// floor.
func (l *RoomLog) Flush() error {
	ch := make(chan error, 1)
	select {
	case l.flushReq <- ch:
		return <-ch
	case <-l.wdone:
		return ErrClosed
	}
}

// writer commits every Interval, on Flush and once more when stopped.
func (l *RoomLog) writer() {
	defer close(l.wdone)
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			_ = l.commit()
		case ch := <-l.flushReq:
			ch <- l.commit()
		case <-l.stop:
			return
		}
	}
}

// commit writes every pending change as one batch with one fsync.
func (l *RoomLog) commit() error {
	if l.broken.Load() {
		return ErrRoomLogBroken
	}
	l.mu.Lock()
	need := l.cur.bytes
	n := len(l.cur.rooms)
	l.mu.Unlock()
	if n == 0 {
		return nil
	}
	floor := l.minFree.Load()
	free, err := l.free(l.dir)
	if err == nil && (free < floor || free-floor < uint64(max(need, 0))) {
		err = fmt.Errorf("%w: %d bytes free, floor %d + %d pending", ErrLowDisk, free, floor, need)
	}
	if err != nil {
		l.skipped.Add(1)
		if !l.lowDisk.Swap(true) || time.Since(l.lowLogged) >= 10*time.Second {
			l.lowLogged = time.Now()
			l.log.Warn("room log: commit put off", "dir", l.dir, "err", err, "pending_bytes", need, "pending_rooms", n)
		}
		if !errors.Is(err, ErrLowDisk) {
			err = fmt.Errorf("%w: %v", ErrLowDisk, err)
		}
		msg := err.Error()
		l.lastErr.Store(&msg)
		return err
	}
	if l.lowDisk.Swap(false) {
		l.log.Info("room log: free space back, committing", "dir", l.dir, "pending_bytes", need)
	}

	start := time.Now()
	l.mu.Lock()
	set := l.cur
	l.cur, l.spare = l.spare, set
	l.mu.Unlock()

	b := l.db.NewBatch()
	var metaSet, dels []string
	for code, r := range set.rooms {
		l.encodeRoom(b, code, r)
		if r.del {
			dels = append(dels, code)
		}
		if r.hasMeta {
			metaSet = append(metaSet, code)
		}
		hist := r.hist
		clear(hist)
		*r = roomPend{hist: hist[:0]}
		set.free = append(set.free, r)
	}
	clear(set.rooms)
	set.bytes = 0
	size := len(b.Repr())
	err = commitLogged(l.plog, b, pebble.Sync)
	_ = b.Close()
	if err != nil {
		l.failures.Add(1)
		l.broken.Store(true)
		msg := err.Error()
		l.lastErr.Store(&msg)
		l.log.Error("room log: commit failed, no further writes", "dir", l.dir, "err", err)
		return fmt.Errorf("%w: %v", ErrRoomLogBroken, err)
	}
	l.batches.Add(1)
	l.bytesWritten.Add(uint64(size))
	l.knownMu.Lock()
	for _, c := range dels {
		delete(l.known, c)
	}
	for _, c := range metaSet {
		l.known[c] = struct{}{}
	}
	l.rooms.Store(int64(len(l.known)))
	l.knownMu.Unlock()
	if d := int64(time.Since(start)); d > l.maxCommit.Load() {
		l.maxCommit.Store(d)
	}
	return nil
}

// encodeRoom adds r's changes to b and releases its frames.
func (l *RoomLog) encodeRoom(b *pebble.Batch, code string, r *roomPend) {
	l.key = appendRoomPrefix(l.key[:0], code)
	pl := len(l.key)
	if r.del {
		end := prefixEnd(l.key)
		_ = b.DeleteRange(l.key, end, nil)
		l.key = l.key[:pl]
	}
	if r.hasTrim {
		lo := appendHistKey(l.key[:pl], 0)
		var hi []byte
		if r.trim == math.MaxUint64 {
			hi = prefixEnd(lo[:pl+1])
		} else {
			l.key2 = appendHistKey(append(l.key2[:0], l.key[:pl]...), r.trim+1)
			hi = l.key2
		}
		_ = b.DeleteRange(lo, hi, nil)
		l.key = lo[:pl]
	}
	if r.hasMeta {
		l.val = encodeRoomMeta(l.val[:0], &r.meta)
		_ = b.Set(append(l.key[:pl], kindMeta), l.val, nil)
	}
	if r.hasState {
		k := append(l.key[:pl], kindState)
		if r.state == nil {
			_ = b.Delete(k, nil)
		} else {
			l.val = append(append(l.val[:0], roomVersion), r.state.Payload()...)
			_ = b.Set(k, l.val, nil)
			r.state.Release()
		}
		r.state = nil
	}
	for i := range r.hist {
		e := &r.hist[i]
		l.val = encodeRoomEntry(l.val[:0], e)
		_ = b.Set(appendHistKey(l.key[:pl], e.Seq), l.val, nil)
		release(e.Frame)
		l.key = l.key[:pl]
	}
}

// Close flushes everything pending, stops the writer and closes the
// database. It returns within CloseTimeout whatever the disk's state; an
// error says what may not have been written (below the floor: everything
// pending is dropped, its frames released). Writes after Close are dropped
// (their frames released). Idempotent.
func (l *RoomLog) Close() error {
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		done := make(chan error, 1)
		go func() {
			err := l.Flush()
			close(l.stop)
			<-l.wdone
			if n := l.discardPending(); n > 0 {
				l.log.Error("room log: closed with changes unwritten", "dir", l.dir, "rooms", n, "err", err)
			}
			if l.broken.Load() {
				done <- errors.Join(err, ErrRoomLogBroken) // the DB may be wedged: don't touch it
				return
			}
			if cerr := closeDB(l.db); err == nil {
				err = cerr
			}
			done <- err
		}()
		select {
		case l.closeErr = <-done:
		case <-time.After(l.closeTO):
			l.closeErr = fmt.Errorf("store: room log close timed out after %v; pending changes may be lost", l.closeTO)
		}
		if l.closeErr != nil {
			l.log.Error("room log: close", "dir", l.dir, "err", l.closeErr)
		}
	})
	return l.closeErr
}

// discardPending drops what is still pending once the writer has exited,
// releasing its frames, and returns how many rooms it concerned.
func (l *RoomLog) discardPending() int {
	l.mu.Lock()
	set := l.cur
	l.cur = newPendingSet()
	l.mu.Unlock()
	for _, r := range set.rooms {
		release(r.state)
		for i := range r.hist {
			release(r.hist[i].Frame)
		}
	}
	return len(set.rooms)
}

// Stats returns a snapshot of the log's counters.
func (l *RoomLog) Stats() RoomLogStats {
	s := RoomLogStats{
		Rooms:          int(l.rooms.Load()),
		Batches:        l.batches.Load(),
		BytesWritten:   l.bytesWritten.Load(),
		SkippedCommits: l.skipped.Load(),
		DroppedAppends: l.dropped.Load(),
		Failures:       l.failures.Load(),
		LowDisk:        l.lowDisk.Load(),
		MaxCommit:      time.Duration(l.maxCommit.Load()),
	}
	l.mu.Lock()
	s.PendingBytes = l.cur.bytes
	s.PendingRooms = len(l.cur.rooms)
	l.mu.Unlock()
	if e := l.lastErr.Load(); e != nil {
		s.LastError = *e
	}
	return s
}

// Load reads every persisted room, ordered by code. Call it once, before
// the first write. A room whose records do not decode is skipped and
// logged, and the returned error (errors.Is ErrCorruptRoom) names it; the
// rooms returned with it are complete and usable. Any other error means
// the scan failed. A skipped room's records stay on disk: Delete its code
// before reusing it.
func (l *RoomLog) Load() ([]RoomRecord, error) {
	l.mu.Lock()
	w := l.written
	l.mu.Unlock()
	if w {
		return nil, errors.New("store: RoomLog.Load after a write")
	}
	it, err := l.db.NewIter(&pebble.IterOptions{LowerBound: []byte{tagRoom}, UpperBound: []byte{tagRoom + 1}})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var (
		out     []RoomRecord
		bad     []error
		cur     RoomRecord
		curCode []byte
		curErr  error
		hasMeta bool
		arena   []byte
		intern  = map[string]string{}
	)
	flush := func() {
		if curCode == nil {
			return
		}
		if curErr == nil && !hasMeta {
			curErr = errors.New("no meta record")
		}
		if curErr != nil {
			e := fmt.Errorf("%w: room %q: %v", ErrCorruptRoom, curCode, curErr)
			l.log.Error("room log: room skipped", "err", e)
			bad = append(bad, e)
		} else {
			out = append(out, cur)
		}
		cur, curErr, hasMeta = RoomRecord{}, nil, false
		clear(intern)
	}
	str := func(b []byte) string {
		if s, ok := intern[string(b)]; ok {
			return s
		}
		s := string(b)
		intern[s] = s
		return s
	}
	keep := func(b []byte) []byte { // copies b into a shared arena
		if len(b) > 64<<10 {
			return bytes.Clone(b)
		}
		if cap(arena)-len(arena) < len(b) {
			arena = make([]byte, 0, 1<<20)
		}
		n := len(arena)
		arena = append(arena, b...)
		return arena[n:len(arena):len(arena)]
	}
	for it.First(); it.Valid(); it.Next() {
		code, kind, seq, err := parseRoomKey(it.Key())
		if code == nil { // not even a code: report the key as its own room
			code = it.Key()
		}
		if !bytes.Equal(code, curCode) {
			flush()
			curCode = bytes.Clone(code)
			cur.Code = string(code)
		}
		if curErr != nil {
			continue
		}
		if err != nil {
			curErr = err
			continue
		}
		v := it.Value()
		switch kind {
		case kindMeta:
			if curErr = decodeRoomMeta(v, &cur.RoomMeta); curErr == nil {
				cur.Code = string(code)
				hasMeta = true
				l.knownMu.Lock()
				l.known[cur.Code] = struct{}{}
				l.knownMu.Unlock()
			}
		case kindState:
			if len(v) == 0 || v[0] != roomVersion {
				curErr = errors.New("state: bad version")
			} else {
				cur.State = keep(v[1:])
			}
		case kindHist:
			var e LoadedEntry
			var payload []byte
			var from, to []byte
			if e.At, from, to, payload, curErr = decodeRoomEntry(v); curErr == nil {
				e.Seq, e.From, e.To, e.Payload = seq, str(from), str(to), keep(payload)
				if cur.History == nil {
					cur.History = make([]LoadedEntry, 0, 64) // the default history bound
				}
				cur.History = append(cur.History, e)
			}
		}
	}
	flush()
	if err := it.Error(); err != nil {
		return nil, err
	}
	l.knownMu.Lock()
	l.rooms.Store(int64(len(l.known)))
	l.knownMu.Unlock()
	return out, errors.Join(bad...)
}

// ---- encoding ----

const (
	tagRoom     = 'r'
	kindHist    = 'h'
	kindMeta    = 'm'
	kindState   = 's'
	roomVersion = 1
)

func appendRoomPrefix(b []byte, code string) []byte {
	return appendName(append(b, tagRoom), code)
}

func appendHistKey(b []byte, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, kindHist), seq)
}

// parseRoomKey splits a key of the room layout.
func parseRoomKey(k []byte) (code []byte, kind byte, seq uint64, err error) {
	if len(k) < 3 || k[0] != tagRoom || k[1] == 0 || len(k) < 3+int(k[1]) {
		return nil, 0, 0, fmt.Errorf("malformed key %q", k)
	}
	n := int(k[1])
	code, rest := k[2:2+n], k[2+n:]
	switch {
	case len(rest) == 1 && (rest[0] == kindMeta || rest[0] == kindState):
		return code, rest[0], 0, nil
	case len(rest) == 9 && rest[0] == kindHist:
		return code, kindHist, binary.BigEndian.Uint64(rest[1:]), nil
	}
	return code, 0, 0, fmt.Errorf("malformed key %q", k)
}

func appendBytes(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// encodeRoomMeta: version, uvarint max, varint created (Unix ns), epoch,
// uvarint seq, uvarint seat count, then each seat's id and token; strings
// are uvarint length + bytes. The code lives in the key.
func encodeRoomMeta(b []byte, m *RoomMeta) []byte {
	b = append(b, roomVersion)
	b = binary.AppendUvarint(b, uint64(max(m.Max, 0)))
	b = appendTime(b, m.Created)
	b = appendBytes(b, m.Epoch)
	b = binary.AppendUvarint(b, m.Seq)
	b = binary.AppendUvarint(b, uint64(len(m.Seats)))
	for _, s := range m.Seats {
		b = appendBytes(appendBytes(b, s.ID), s.Token)
	}
	return b
}

// encodeRoomEntry: version, varint at (Unix ns), from, to, then the frame
// to the end. The seq lives in the key.
func encodeRoomEntry(b []byte, e *HistoryEntry) []byte {
	b = append(b, roomVersion)
	b = appendTime(b, e.At)
	b = appendBytes(appendBytes(b, e.From), e.To)
	if e.Frame != nil {
		b = append(b, e.Frame.Payload()...)
	}
	return b
}

// appendTime writes t as varint Unix nanoseconds; the zero Time is 0
// (so the instant 1970-01-01T00:00:00Z exactly loads as the zero Time).
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.AppendVarint(b, 0)
	}
	return binary.AppendVarint(b, t.UnixNano())
}

func timeOf(ns int64) time.Time {
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// roomDec reads the fields of an encoded value; the first error sticks.
type roomDec struct {
	b   []byte
	err error
}

func (d *roomDec) fail(what string) {
	if d.err == nil {
		d.err = fmt.Errorf("truncated or invalid %s", what)
	}
}

func (d *roomDec) uvarint(what string) uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *roomDec) varint(what string) int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.fail(what)
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *roomDec) bytes(what string) []byte {
	n := d.uvarint(what)
	if d.err != nil {
		return nil
	}
	if n > uint64(len(d.b)) {
		d.fail(what)
		return nil
	}
	s := d.b[:n]
	d.b = d.b[n:]
	return s
}

func (d *roomDec) version(what string) {
	if len(d.b) == 0 || d.b[0] != roomVersion {
		d.err = fmt.Errorf("%s: unknown version", what)
		return
	}
	d.b = d.b[1:]
}

// decodeRoomMeta decodes a meta value into m (all but m.Code).
func decodeRoomMeta(v []byte, m *RoomMeta) error {
	d := roomDec{b: v}
	d.version("meta")
	mx := d.uvarint("max")
	created := d.varint("created")
	epoch := d.bytes("epoch")
	seq := d.uvarint("seq")
	n := d.uvarint("seat count")
	if d.err == nil && n > uint64(len(d.b))/2 { // each seat takes two bytes at least
		d.fail("seat count")
	}
	if d.err == nil && mx > math.MaxInt32 {
		d.fail("max")
	}
	var seats []Seat
	if d.err == nil && n > 0 {
		seats = make([]Seat, n)
		for i := range seats {
			seats[i].ID = string(d.bytes("seat id"))
			seats[i].Token = string(d.bytes("seat token"))
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errors.New("meta: trailing bytes")
	}
	if d.err != nil {
		return d.err
	}
	*m = RoomMeta{Code: m.Code, Max: int(mx), Created: timeOf(created), Epoch: string(epoch), Seq: seq, Seats: seats}
	return nil
}

// decodeRoomEntry decodes a history value; the slices alias v.
func decodeRoomEntry(v []byte) (at time.Time, from, to, payload []byte, err error) {
	d := roomDec{b: v}
	d.version("history")
	ns := d.varint("at")
	from = d.bytes("from")
	to = d.bytes("to")
	if d.err != nil {
		return time.Time{}, nil, nil, nil, d.err
	}
	return timeOf(ns), from, to, d.b, nil
}
