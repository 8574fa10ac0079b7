package store

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// refs counts the frames handed to a RoomLog that it has not released yet,
// and catches double releases.
type refs struct {
	out    atomic.Int64
	double atomic.Int64
}

// frame is a reference-counted encoded frame, as the party dialect holds.
type frame struct {
	b    []byte
	n    atomic.Int32
	refs *refs
}

func (r *refs) frame(s string) *frame {
	f := &frame{b: []byte(s), refs: r}
	f.n.Store(1)
	r.out.Add(1)
	return f
}

func (f *frame) Payload() []byte { return f.b }
func (f *frame) Release() {
	if f.n.Add(-1) < 0 {
		f.refs.double.Add(1)
		return
	}
	f.refs.out.Add(-1)
}

func (r *refs) check(t *testing.T) {
	t.Helper()
	if n, d := r.out.Load(), r.double.Load(); n != 0 || d != 0 {
		t.Fatalf("frames not released: %d, released twice: %d", n, d)
	}
}

func openRooms(t testing.TB, dir string, o RoomLogOptions) *RoomLog {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet
	}
	l, err := OpenRoomLog(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// reload closes l and returns what a new RoomLog on dir loads.
func reload(t *testing.T, l *RoomLog, dir string) ([]RoomRecord, *RoomLog) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openRooms(t, dir, RoomLogOptions{})
	recs, err := l2.Load()
	if err != nil {
		t.Fatal(err)
	}
	return recs, l2
}

func byCode(recs []RoomRecord) map[string]RoomRecord {
	m := map[string]RoomRecord{}
	for _, r := range recs {
		m[r.Code] = r
	}
	return m
}

var t0 = time.Date(2026, 12, 5, 4, 0, 0, 123456789, time.UTC)

func TestRoomLogRoundTrip(t *testing.T) {
	dir := t.TempDir()
	var rf refs
	l := openRooms(t, dir, RoomLogOptions{Interval: 10 * time.Millisecond})
	if recs, err := l.Load(); err != nil || len(recs) != 0 {
		t.Fatalf("empty load: %v %v", recs, err)
	}
	const rooms, entries = 300, 20
	want := map[string]RoomRecord{}
	for i := range rooms {
		code := fmt.Sprintf("R%03d", i)
		m := RoomMeta{Code: code, Max: i + 1, Created: t0.Add(time.Duration(i) * time.Second), Epoch: "ep" + code, Seq: entries}
		for j := range i % 5 {
			m.Seats = append(m.Seats, Seat{ID: fmt.Sprintf("c%d", j), Token: fmt.Sprintf("tok-%d-%d", i, j)})
		}
		if i == 7 {
			m.Created = time.Time{}
		}
		l.PutMeta(m)
		rec := RoomRecord{RoomMeta: m}
		rec.Seats = slices.Clone(m.Seats)
		if i%3 != 0 {
			st := fmt.Sprintf(`{"state":%d}`, i)
			l.PutState(code, rf.frame(st))
			rec.State = []byte(st)
		}
		for s := uint64(1); s <= entries; s++ {
			e := HistoryEntry{Seq: s, From: "c1", To: "", At: t0.Add(time.Duration(s) * time.Millisecond)}
			if s%4 == 0 {
				e.From, e.To = "", "c2" // server to one client
			}
			body := fmt.Sprintf(`{"room":%q,"seq":%d}`, code, s)
			if s == 5 {
				body = "" // an empty frame, passed as nil
			} else {
				e.Frame = rf.frame(body)
			}
			l.Append(code, e)
			rec.History = append(rec.History, LoadedEntry{Seq: s, From: e.From, To: e.To, At: e.At, Payload: []byte(body)})
		}
		want[code] = rec
		if i%50 == 0 {
			time.Sleep(15 * time.Millisecond) // spread over several commits
		}
	}
	recs, l2 := reload(t, l, dir)
	rf.check(t)
	if len(recs) != rooms || l2.Stats().Rooms != rooms {
		t.Fatalf("loaded %d rooms, stats %d; want %d", len(recs), l2.Stats().Rooms, rooms)
	}
	if !slices.IsSortedFunc(recs, func(a, b RoomRecord) int { return strings.Compare(a.Code, b.Code) }) {
		t.Fatal("rooms not ordered by code")
	}
	for _, got := range recs {
		compareRoom(t, got, want[got.Code])
	}
}

func compareRoom(t *testing.T, got, want RoomRecord) {
	t.Helper()
	if got.Code != want.Code || got.Max != want.Max || !got.Created.Equal(want.Created) || got.Epoch != want.Epoch ||
		got.Seq != want.Seq || !slices.Equal(got.Seats, want.Seats) || !bytes.Equal(got.State, want.State) || (got.State == nil) != (want.State == nil) {
		t.Fatalf("room %s meta/state:\n got %+v %q\nwant %+v %q", want.Code, got.RoomMeta, got.State, want.RoomMeta, want.State)
	}
	if len(got.History) != len(want.History) {
		t.Fatalf("room %s: %d history entries, want %d", want.Code, len(got.History), len(want.History))
	}
	for i, g := range got.History {
		w := want.History[i]
		if g.Seq != w.Seq || g.From != w.From || g.To != w.To || !g.At.Equal(w.At) || !bytes.Equal(g.Payload, w.Payload) {
			t.Fatalf("room %s entry %d: got %+v want %+v", want.Code, i, g, w)
		}
	}
}

// TestRoomLogCoalescing: changes within one interval are merged before
// they are written: one batch, only the latest meta/state, no trimmed or
// deleted entry.
func TestRoomLogCoalescing(t *testing.T) {
	dir := t.TempDir()
	var rf refs
	l := openRooms(t, dir, RoomLogOptions{Interval: time.Hour})
	big := strings.Repeat("x", 1000)
	for i := range 100 {
		l.PutMeta(RoomMeta{Code: "keep", Max: i, Epoch: "e", Seq: uint64(i)})
		l.PutState("keep", rf.frame(big+strconv.Itoa(i)))
		l.Append("keep", HistoryEntry{Seq: uint64(i + 1), Frame: rf.frame(big)})
		l.Trim("keep", uint64(i)) // keeps only the newest pending entry
		l.PutMeta(RoomMeta{Code: "gone", Epoch: "g"})
		l.PutState("gone", rf.frame(big))
		l.Append("gone", HistoryEntry{Seq: uint64(i + 1), Frame: rf.frame(big)})
	}
	l.Delete("gone")
	l.PutState("cleared", rf.frame(big))
	l.PutState("cleared", nil)
	if s := l.Stats(); s.PendingRooms != 3 || s.PendingBytes > 3*1100 || s.Batches != 0 {
		t.Fatalf("pending before flush: %+v", s)
	}
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	s := l.Stats()
	// One meta, one state and one entry of ~1 KB each for "keep"; a range
	// deletion for "gone"; a trim range and a point deletion.
	if s.Batches != 1 || s.BytesWritten > 2600 || s.PendingBytes != 0 || s.PendingRooms != 0 {
		t.Fatalf("after flush: %+v", s)
	}
	if err := l.Flush(); err != nil || l.Stats().Batches != 1 {
		t.Fatalf("an empty flush wrote a batch: %v %+v", err, l.Stats())
	}
	rf.check(t)
	recs, _ := reload(t, l, dir)
	if len(recs) != 1 || recs[0].Code != "keep" || recs[0].Max != 99 || string(recs[0].State) != big+"99" ||
		len(recs[0].History) != 1 || recs[0].History[0].Seq != 100 {
		t.Fatalf("loaded %+v", recs)
	}
}

func TestRoomLogTrimAndDelete(t *testing.T) {
	dir := t.TempDir()
	var rf refs
	l := openRooms(t, dir, RoomLogOptions{Interval: time.Hour})
	for _, code := range []string{"a", "ab", "b", "all"} {
		l.PutMeta(RoomMeta{Code: code, Epoch: "e"})
		l.PutState(code, rf.frame("st"))
		for s := uint64(1); s <= 10; s++ {
			l.Append(code, HistoryEntry{Seq: s, Frame: rf.frame(fmt.Sprint(s))})
		}
	}
	l.Append("all", HistoryEntry{Seq: math.MaxUint64, Frame: rf.frame("last")})
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	// Now the entries are on disk: trims and deletes are range deletions.
	l.Trim("a", 4)
	l.Trim("a", 2) // a lower trim does not undo a higher one
	l.Delete("ab") // must not touch "a" nor "b"
	l.Trim("all", math.MaxUint64)
	l.Append("b", HistoryEntry{Seq: 11, Frame: rf.frame("11")})
	l.Trim("b", 10) // covers the disk entries, not the pending 11
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	// Re-created in a later interval: a fresh room, nothing of the old one.
	l.Delete("b")
	l.PutMeta(RoomMeta{Code: "b", Epoch: "new"})
	l.Append("b", HistoryEntry{Seq: 1, Frame: rf.frame("fresh")})
	recs, l2 := reload(t, l, dir)
	rf.check(t)
	got := byCode(recs)
	seqs := func(code string) []uint64 {
		var out []uint64
		for _, e := range got[code].History {
			out = append(out, e.Seq)
		}
		return out
	}
	if len(recs) != 3 || l2.Stats().Rooms != 3 {
		t.Fatalf("rooms: %v", slices.Collect(func(yield func(string) bool) {
			for _, r := range recs {
				yield(r.Code)
			}
		}))
	}
	if !slices.Equal(seqs("a"), []uint64{5, 6, 7, 8, 9, 10}) || string(got["a"].State) != "st" {
		t.Fatalf("a: %v %q", seqs("a"), got["a"].State)
	}
	if len(seqs("all")) != 0 || string(got["all"].State) != "st" {
		t.Fatalf("all: %v", seqs("all"))
	}
	if got["b"].Epoch != "new" || got["b"].State != nil || !slices.Equal(seqs("b"), []uint64{1}) || string(got["b"].History[0].Payload) != "fresh" {
		t.Fatalf("b: %+v", got["b"])
	}
}

// TestRoomLogCloseFlushes: Close writes everything pending (the interval
// never elapses), later writes are refused and their frames released.
func TestRoomLogCloseFlushes(t *testing.T) {
	dir := t.TempDir()
	var rf refs
	l := openRooms(t, dir, RoomLogOptions{Interval: time.Hour})
	for i := range 50 {
		code := fmt.Sprint("c", i)
		l.PutMeta(RoomMeta{Code: code, Seq: 3})
		l.PutState(code, rf.frame("s"))
		l.Append(code, HistoryEntry{Seq: 3, Frame: rf.frame("h")})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l.PutMeta(RoomMeta{Code: "late"})
	l.PutState("late", rf.frame("s"))
	l.Append("late", HistoryEntry{Seq: 1, Frame: rf.frame("h")})
	if err := l.Flush(); !errors.Is(err, ErrClosed) {
		t.Fatalf("flush after close: %v", err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	rf.check(t)
	recs, _ := reload(t, l, dir)
	if len(recs) != 50 {
		t.Fatalf("loaded %d rooms", len(recs))
	}
	for _, r := range recs {
		if r.Seq != 3 || string(r.State) != "s" || len(r.History) != 1 {
			t.Fatalf("room %+v", r)
		}
	}
}

// TestRoomLogCodeLimit crosses MaxRoomCode.
func TestRoomLogCodeLimit(t *testing.T) {
	dir := t.TempDir()
	var rf refs
	l := openRooms(t, dir, RoomLogOptions{Interval: time.Hour})
	long, tooLong := strings.Repeat("k", MaxRoomCode), strings.Repeat("k", MaxRoomCode+1)
	for _, code := range []string{long, tooLong, ""} {
		l.PutMeta(RoomMeta{Code: code})
		l.PutState(code, rf.frame("s"))
		l.Append(code, HistoryEntry{Seq: 1, Frame: rf.frame("h")})
	}
	if s := l.Stats(); s.DroppedAppends != 2 || s.PendingRooms != 1 {
		t.Fatalf("stats %+v", s)
	}
	recs, _ := reload(t, l, dir)
	rf.check(t)
	if len(recs) != 1 || recs[0].Code != long || len(recs[0].History) != 1 {
		t.Fatalf("loaded %d rooms", len(recs))
	}
}

// TestRoomLogNoAllocs: recording a change of a room already seen costs no
// allocation.
func TestRoomLogNoAllocs(t *testing.T) {
	l := openRooms(t, t.TempDir(), RoomLogOptions{Interval: time.Hour})
	var rf refs
	f := rf.frame("payload")
	f.n.Store(1 << 30)
	seats := []Seat{{ID: "a", Token: "t"}}
	l.PutMeta(RoomMeta{Code: "r"})
	seq := uint64(0)
	for range 100 { // grow the pending slice once
		seq++
		l.Append("r", HistoryEntry{Seq: seq, Frame: f})
	}
	l.Trim("r", seq)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		l.Append("r", HistoryEntry{Seq: seq, From: "a", At: t0, Frame: f})
		l.PutMeta(RoomMeta{Code: "r", Seq: seq, Seats: seats})
		l.PutState("r", f)
		l.Trim("r", seq-1)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per change", allocs)
	}
}

// TestRoomLogFreeSpaceFloor: below the floor nothing is committed and
// nothing is lost, past MaxPending appends are dropped as trims (history
// stays gap-free) while meta and state are kept, and once space is back
// everything lands by itself.
func TestRoomLogFreeSpaceFloor(t *testing.T) {
	dir := t.TempDir()
	var rf refs
	const maxPending = 64 << 10
	l := openRooms(t, dir, RoomLogOptions{Interval: 5 * time.Millisecond, MaxPending: maxPending})
	l.PutMeta(RoomMeta{Code: "old", Seq: 2})
	l.Append("old", HistoryEntry{Seq: 1, Frame: rf.frame("on disk")})
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	free, err := StatfsFree(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.minFree.Store(free + 1<<40) // a floor above the actual free space
	frameBody := strings.Repeat("f", 1000)
	seq := uint64(0)
	for l.Stats().PendingBytes <= maxPending {
		seq++
		l.PutMeta(RoomMeta{Code: "full", Seq: seq})
		l.Append("full", HistoryEntry{Seq: seq, Frame: rf.frame(frameBody)})
	}
	crossed := seq
	// Past the limit: this append is dropped, and so is the pending history
	// before it (a trim), so what is persisted later has no gap.
	seq++
	l.PutMeta(RoomMeta{Code: "full", Seq: seq})
	l.Append("full", HistoryEntry{Seq: seq, Frame: rf.frame(frameBody)})
	if s := l.Stats(); s.DroppedAppends != 1 || s.PendingBytes > 1000 {
		t.Fatalf("stats after crossing MaxPending: %+v", s)
	}
	// Below the limit again: appends, meta and state are kept.
	for range 5 {
		seq++
		l.PutMeta(RoomMeta{Code: "full", Seq: seq})
		l.PutState("full", rf.frame(fmt.Sprint("state ", seq)))
		l.Append("full", HistoryEntry{Seq: seq, Frame: rf.frame(frameBody)})
	}
	l.Delete("old")
	if err := l.Flush(); !errors.Is(err, ErrLowDisk) {
		t.Fatalf("flush below the floor: %v", err)
	}
	time.Sleep(30 * time.Millisecond) // several intervals, all put off
	s := l.Stats()
	if s.Batches != 1 || s.SkippedCommits < 2 || !s.LowDisk || s.DroppedAppends != 1 || s.PendingRooms != 2 || !strings.Contains(s.LastError, "floor") {
		t.Fatalf("stats below the floor: %+v", s)
	}

	l.minFree.Store(1) // space is back: the writer resumes on its own
	deadline := time.Now().Add(10 * time.Second)
	for l.Stats().PendingRooms != 0 || l.Stats().LowDisk {
		if time.Now().After(deadline) {
			t.Fatalf("never resumed: %+v", l.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	recs, _ := reload(t, l, dir)
	rf.check(t)
	if len(recs) != 1 || recs[0].Code != "full" {
		t.Fatalf("loaded %d rooms", len(recs))
	}
	r := recs[0]
	var seqs []uint64
	for _, e := range r.History {
		seqs = append(seqs, e.Seq)
	}
	if r.Seq != seq || string(r.State) != fmt.Sprint("state ", seq) ||
		!slices.Equal(seqs, []uint64{crossed + 2, crossed + 3, crossed + 4, crossed + 5, crossed + 6}) {
		t.Fatalf("full: seq %d state %q history %v; crossed at %d", r.Seq, r.State, seqs, crossed)
	}
}

// TestRoomLogFreeSpaceError: when free space cannot be measured the commit
// is put off too.
func TestRoomLogFreeSpaceError(t *testing.T) {
	l := openRooms(t, t.TempDir(), RoomLogOptions{Interval: time.Hour})
	l.free = func(string) (uint64, error) { return 0, fs.ErrPermission }
	l.PutMeta(RoomMeta{Code: "x"})
	if err := l.Flush(); !errors.Is(err, ErrLowDisk) || !errors.Is(err, fs.ErrPermission) && !strings.Contains(err.Error(), "permission") {
		t.Fatalf("flush: %v", err)
	}
	l.free = StatfsFree // the writer is idle (interval of an hour)
	if err := l.Flush(); err != nil || l.Stats().Batches != 1 {
		t.Fatalf("flush: %v %+v", err, l.Stats())
	}
}

// TestRoomLogCloseBounded crosses the close timeout: a writer stuck on the
// disk does not hold Close.
func TestRoomLogCloseBounded(t *testing.T) {
	l := openRooms(t, t.TempDir(), RoomLogOptions{Interval: time.Hour})
	l.closeTO = 200 * time.Millisecond
	stuck := make(chan struct{})
	defer close(stuck)
	l.free = func(string) (uint64, error) { <-stuck; return math.MaxUint64, nil }
	l.PutMeta(RoomMeta{Code: "x"})
	start := time.Now()
	err := l.Close()
	if d := time.Since(start); err == nil || d > 2*time.Second {
		t.Fatalf("close: %v after %v", err, d)
	}
}

// TestRoomLogCommitPanic: a panic inside Pebble's commit (how it reports a
// failed WAL write) becomes an error; the log stops writing, Close still
// returns.
func TestRoomLogCommitPanic(t *testing.T) {
	l := openRooms(t, t.TempDir(), RoomLogOptions{Interval: time.Hour})
	if err := l.db.Close(); err != nil { // Pebble panics on a commit to a closed DB
		t.Fatal(err)
	}
	var rf refs
	l.PutMeta(RoomMeta{Code: "x"})
	l.Append("x", HistoryEntry{Seq: 1, Frame: rf.frame("h")})
	if err := l.Flush(); !errors.Is(err, ErrRoomLogBroken) {
		t.Fatalf("flush: %v", err)
	}
	s := l.Stats()
	if s.Failures != 1 || s.LastError == "" || s.Batches != 0 {
		t.Fatalf("stats %+v", s)
	}
	l.PutMeta(RoomMeta{Code: "y"})
	if err := l.Flush(); !errors.Is(err, ErrRoomLogBroken) {
		t.Fatalf("second flush: %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrRoomLogBroken) {
		t.Fatalf("close: %v", err)
	}
	rf.check(t)
}

// TestRoomLogCorruptRoom: a record that does not decode skips its room,
// with an error naming it, and nothing else.
func TestRoomLogCorruptRoom(t *testing.T) {
	dir := t.TempDir()
	l := openRooms(t, dir, RoomLogOptions{})
	for _, c := range []string{"a", "b", "c", "d", "e"} {
		l.PutMeta(RoomMeta{Code: c, Epoch: c})
		l.Append(c, HistoryEntry{Seq: 1})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: &pebbleLogger{l: quiet}})
	if err != nil {
		t.Fatal(err)
	}
	key := func(code string, rest ...byte) []byte { return append(appendRoomPrefix(nil, code), rest...) }
	_ = db.Set(key("b", kindMeta), []byte{roomVersion, 1, 2}, nil)                     // truncated meta
	_ = db.Set(appendHistKey(key("c"), 2), []byte{9}, nil)                             // unknown version
	_ = db.Set(key("d", 'x'), nil, nil)                                                // unknown record kind
	_ = db.Set(appendHistKey(key("f"), 1), encodeRoomEntry(nil, &HistoryEntry{}), nil) // history without meta
	_ = db.Set([]byte{tagRoom, 40, 'z'}, nil, nil)                                     // key shorter than its code
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	l2 := openRooms(t, dir, RoomLogOptions{})
	recs, err := l2.Load()
	if !errors.Is(err, ErrCorruptRoom) {
		t.Fatalf("load error %v", err)
	}
	for _, c := range []string{`"b"`, `"c"`, `"d"`, `"f"`, `"r(z"`} {
		if !strings.Contains(err.Error(), "room "+c) {
			t.Fatalf("error does not name room %s: %v", c, err)
		}
	}
	got := byCode(recs)
	if len(recs) != 2 || got["a"].Epoch != "a" || len(got["e"].History) != 1 {
		t.Fatalf("loaded %+v", recs)
	}
}

// TestRoomLogInPebbleSubdir: the chat store's Pebble DB at D and the room
// log at D/party live together, whichever opens first.
func TestRoomLogInPebbleSubdir(t *testing.T) {
	for _, roomsFirst := range []bool{false, true} {
		t.Run(fmt.Sprint("roomsFirst=", roomsFirst), func(t *testing.T) {
			d := t.TempDir()
			var chat *Pebble
			var rooms *RoomLog
			openChat := func() {
				var err error
				if chat, err = OpenPebble(d, PebbleOptions{Logger: quiet}); err != nil {
					t.Fatal(err)
				}
			}
			openParty := func() {
				var err error
				if rooms, err = OpenRoomLog(filepath.Join(d, "party"), RoomLogOptions{Logger: quiet}); err != nil {
					t.Fatal(err)
				}
			}
			for round := range 2 {
				if roomsFirst {
					openParty()
					openChat()
				} else {
					openChat()
					openParty()
				}
				recs, err := rooms.Load()
				if err != nil || len(recs) != round {
					t.Fatalf("round %d: %d rooms, %v", round, len(recs), err)
				}
				if pg, err := chat.History(Group("g"), 0, 10, 0); err != nil || len(pg.Messages) != round {
					t.Fatalf("round %d: %d messages, %v", round, len(pg.Messages), err)
				}
				rooms.PutMeta(RoomMeta{Code: fmt.Sprint("room", round)})
				if _, err := chat.Append(Group("g"), Message{From: "u", GroupID: "g", Content: "hi"}); err != nil {
					t.Fatal(err)
				}
				if err := chat.Close(); err != nil {
					t.Fatal(err)
				}
				if err := rooms.Close(); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// crashEnv names the directory of the child process of TestRoomLogCrash.
const crashEnv = "PARTYLINE_ROOMLOG_CRASH_DIR"

const crashInterval = 50 * time.Millisecond

// TestRoomLogCrash runs a child that writes steadily, SIGKILLs it, and
// checks that at most the last interval (plus the commit in flight) was
// lost, and that a room's meta, state and history were committed together.
func TestRoomLogCrash(t *testing.T) {
	if dir := os.Getenv(crashEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestRoomLogCrash$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu        sync.Mutex
		at        = map[uint64]int64{} // seq -> when the child appended it (Unix ns)
		maxCommit time.Duration
		lastSeq   uint64
	)
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) != 3 {
				continue
			}
			a, _ := strconv.ParseUint(f[1], 10, 64)
			b, _ := strconv.ParseInt(f[2], 10, 64)
			mu.Lock()
			switch f[0] {
			case "a":
				at[a], lastSeq = b, a
			case "c":
				maxCommit = time.Duration(b)
			}
			mu.Unlock()
		}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := lastSeq
		mu.Unlock()
		if n >= 1500 {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("child wrote only %d entries", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	kill := time.Now().UnixNano()
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	<-scanned

	l := openRooms(t, dir, RoomLogOptions{})
	recs, err := l.Load()
	if err != nil || len(recs) != 1 {
		t.Fatalf("load: %d rooms, %v", len(recs), err)
	}
	r := recs[0]
	if len(r.History) == 0 {
		t.Fatal("no history survived")
	}
	m := r.History[len(r.History)-1].Seq
	for i, e := range r.History {
		if e.Seq != r.History[0].Seq+uint64(i) || string(e.Payload) != fmt.Sprint("frame ", e.Seq) {
			t.Fatalf("history not contiguous at %d: %+v", i, e)
		}
	}
	if r.Seq != m || string(r.State) != fmt.Sprint("state ", m) {
		t.Fatalf("meta seq %d, state %q; last entry %d: not one batch", r.Seq, r.State, m)
	}
	mu.Lock()
	defer mu.Unlock()
	if m > lastSeq {
		t.Fatalf("persisted %d, child reported only %d", m, lastSeq)
	}
	// The oldest change lost is m+1 (if reported): it must be younger than
	// one interval plus the longest commit, with a little scheduling slack.
	lost := time.Duration(0)
	if t1, ok := at[m+1]; ok {
		lost = time.Duration(kill - t1)
	}
	bound := crashInterval + maxCommit + 50*time.Millisecond
	t.Logf("killed after %d entries; persisted through %d; lost window %v (interval %v, max commit %v)", lastSeq, m, lost, crashInterval, maxCommit)
	if lost > bound {
		t.Fatalf("lost %v of changes (entries %d..%d), bound %v", lost, m+1, lastSeq, bound)
	}
}

// crashChild writes one entry about every 500µs, reporting each on stdout,
// until it is killed.
func crashChild(dir string) {
	l, err := OpenRoomLog(dir, RoomLogOptions{Interval: crashInterval, Logger: quiet})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if _, err := l.Load(); err != nil {
		os.Exit(2)
	}
	var rf refs
	w := bufio.NewWriter(os.Stdout)
	for seq := uint64(1); ; seq++ {
		l.PutMeta(RoomMeta{Code: "crash", Epoch: "e", Seq: seq, Created: t0})
		l.PutState("crash", rf.frame(fmt.Sprint("state ", seq)))
		l.Append("crash", HistoryEntry{Seq: seq, At: time.Now(), Frame: rf.frame(fmt.Sprint("frame ", seq))})
		if seq > 64 {
			l.Trim("crash", seq-64)
		}
		fmt.Fprintf(w, "a %d %d\n", seq, time.Now().UnixNano())
		if seq%20 == 0 {
			fmt.Fprintf(w, "c 0 %d\n", int64(l.Stats().MaxCommit))
		}
		w.Flush()
		time.Sleep(500 * time.Microsecond)
	}
}

// TestRoomLogLoad10k writes 10,000 rooms with 64 history entries of ~200
// bytes each and times a fresh open + Load. Figures in the log:
//
//	go test -run TestRoomLogLoad10k -v ./store
func TestRoomLogLoad10k(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("writes ~130 MB; a timing figure means nothing under -race")
	}
	dir := t.TempDir()
	l := openRooms(t, dir, RoomLogOptions{Interval: time.Hour})
	const rooms, entries = 10000, 64
	var rf refs
	rnd := rand.New(rand.NewPCG(1, 2))
	body := func(code string, seq uint64) []byte { // ~200 B of JSON, half of it random hex
		b := fmt.Appendf(nil, `{"type":"message","room":%q,"seq":%d,"from":"c1","data":{"text":"hello there, everyone in the room","x":"`, code, seq)
		for len(b) < 198 {
			b = fmt.Appendf(b, "%x", rnd.Uint32()&15)
		}
		return append(b, `"}`...)
	}
	start := time.Now()
	for i := range rooms {
		code := fmt.Sprintf("%06X", i)
		l.PutMeta(RoomMeta{Code: code, Max: 8, Created: t0, Epoch: "0123456789abcdef", Seq: entries,
			Seats: []Seat{{ID: "c1", Token: "tok1tok1tok1tok1tok1tok1"}, {ID: "c2", Token: "tok2tok2tok2tok2tok2tok2"}}})
		l.PutState(code, rf.frame(string(body(code, 0))))
		for s := uint64(1); s <= entries; s++ {
			f := &frame{b: body(code, s), refs: &rf}
			f.n.Store(1)
			rf.out.Add(1)
			l.Append(code, HistoryEntry{Seq: s, From: "c1", At: t0, Frame: f})
		}
		if i%500 == 499 {
			if err := l.Flush(); err != nil {
				t.Fatal(err)
			}
		}
	}
	wrote := time.Since(start)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	rf.check(t)
	var size int64
	_ = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if fi, err := d.Info(); err == nil {
				size += fi.Size()
			}
		}
		return nil
	})
	start = time.Now()
	l2 := openRooms(t, dir, RoomLogOptions{})
	opened := time.Since(start)
	recs, err := l2.Load()
	took := time.Since(start)
	if err != nil || len(recs) != rooms {
		t.Fatalf("loaded %d rooms, %v", len(recs), err)
	}
	for _, r := range recs {
		if len(r.History) != entries || len(r.Seats) != 2 || len(r.State) != 200 {
			t.Fatalf("room %s: %d entries", r.Code, len(r.History))
		}
	}
	t.Logf("10,000 rooms x 64 entries x 200 B: written in %v; %d bytes on disk (%d per room); open %v, open+Load %v", wrote, size, size/rooms, opened, took)
	if took > 10*time.Second {
		t.Fatalf("open+Load took %v", took)
	}
}

// TestRoomLogSteadyLoad: a steady append load commits about once per
// interval, whatever the append rate.
func TestRoomLogSteadyLoad(t *testing.T) {
	const interval = defaultRoomInterval
	l := openRooms(t, t.TempDir(), RoomLogOptions{})
	var rf refs
	start := time.Now()
	n := 0
	for seq := uint64(1); time.Since(start) < time.Second; seq++ {
		for r := range 50 {
			code := strconv.Itoa(r)
			l.Append(code, HistoryEntry{Seq: seq, Frame: rf.frame("some frame of moderate size ..........")})
			if seq > 64 {
				l.Trim(code, seq-64)
			}
			n++
		}
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	s := l.Stats()
	perSec := float64(s.Batches) / el.Seconds()
	t.Logf("%d appends in %v: %d batches (%.1f/s, interval %v), %d bytes written, max commit %v", n, el, s.Batches, perSec, interval, s.BytesWritten, s.MaxCommit)
	if perSec > float64(time.Second/interval)+2 {
		t.Fatalf("%.1f batches per second for an interval of %v", perSec, interval)
	}
	rf.check(t)
}

func FuzzRoomRecord(f *testing.F) {
	meta := RoomMeta{Max: 4, Created: t0, Epoch: "ep", Seq: 9, Seats: []Seat{{"a", "t"}, {"b", ""}}}
	f.Add(append(appendRoomPrefix(nil, "ABCD"), kindMeta), encodeRoomMeta(nil, &meta))
	f.Add(appendHistKey(appendRoomPrefix(nil, "ABCD"), 7), encodeRoomEntry(nil, &HistoryEntry{From: "a", To: "b", At: t0}))
	f.Add(append(appendRoomPrefix(nil, "x"), kindState), []byte{roomVersion, '{', '}'})
	f.Add([]byte{tagRoom, 200}, []byte{roomVersion, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, key, val []byte) {
		code, kind, seq, err := parseRoomKey(key)
		if err == nil {
			k := appendRoomPrefix(nil, string(code))
			if kind == kindHist {
				k = appendHistKey(k, seq)
			} else {
				k = append(k, kind)
			}
			if !bytes.Equal(k, key) {
				t.Fatalf("key %q parses to %q %c %d", key, code, kind, seq)
			}
		}
		var m RoomMeta
		if err := decodeRoomMeta(val, &m); err == nil {
			var m2 RoomMeta
			if err := decodeRoomMeta(encodeRoomMeta(nil, &m), &m2); err != nil ||
				m2.Max != m.Max || !m2.Created.Equal(m.Created) || m2.Epoch != m.Epoch || m2.Seq != m.Seq || !slices.Equal(m2.Seats, m.Seats) {
				t.Fatalf("meta does not round-trip: %+v -> %+v %v", m, m2, err)
			}
		}
		if at, from, to, p, err := decodeRoomEntry(val); err == nil {
			e := HistoryEntry{From: string(from), To: string(to), At: at}
			if len(p) > 0 {
				var rf refs
				e.Frame = rf.frame(string(p))
			}
			at2, from2, to2, p2, err := decodeRoomEntry(encodeRoomEntry(nil, &e))
			if err != nil || !at2.Equal(at) || !bytes.Equal(from, from2) || !bytes.Equal(to, to2) || !bytes.Equal(p, p2) {
				t.Fatalf("entry does not round-trip: %v", err)
			}
		}
	})
}

// TestRoomLogRealFullDisk fills a small tmpfs (needs the right to mount;
// skipped otherwise): the floor puts commits off before Pebble can hit
// ENOSPC, nothing panics, and once space is freed everything lands.
func TestRoomLogRealFullDisk(t *testing.T) {
	mnt := t.TempDir()
	if err := syscall.Mount("tmpfs", mnt, "tmpfs", 0, "size=48m"); err != nil {
		t.Skipf("cannot mount a tmpfs: %v", err)
	}
	t.Cleanup(func() { _ = syscall.Unmount(mnt, 0) })
	dir := filepath.Join(mnt, "party")
	// The floor must leave room for what Pebble writes on its own after a
	// commit: the memtable (4 MiB) flushed to a table, then compactions.
	const floor = 16 << 20
	var logs syncBuffer
	l := openRooms(t, dir, RoomLogOptions{Interval: 10 * time.Millisecond, MinFree: floor,
		Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	minFree := atomic.Uint64{}
	minFree.Store(math.MaxUint64)
	stopWatch := make(chan struct{})
	watched := make(chan struct{})
	go func() { // the lowest free space seen
		defer close(watched)
		for {
			if f, err := StatfsFree(mnt); err == nil && f < minFree.Load() {
				minFree.Store(f)
			}
			select {
			case <-stopWatch:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	l.PutMeta(RoomMeta{Code: "r", Epoch: "e"})
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	// Leave about the floor + 5 MiB free.
	free, err := StatfsFree(mnt)
	if err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, free-floor-5<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	var rf refs
	big := strings.Repeat("z", 64<<10)
	seq := uint64(0)
	deadline := time.Now().Add(20 * time.Second)
	for !l.Stats().LowDisk { // 64 KiB frames until the floor holds commits back
		if time.Now().After(deadline) {
			t.Fatalf("never reached the floor: %+v", l.Stats())
		}
		seq++
		l.PutMeta(RoomMeta{Code: "r", Epoch: "e", Seq: seq})
		l.Append("r", HistoryEntry{Seq: seq, Frame: rf.frame(big)})
		time.Sleep(2 * time.Millisecond)
	}
	for range 20 { // keeps going while the disk is full
		seq++
		l.PutMeta(RoomMeta{Code: "r", Epoch: "e", Seq: seq})
		l.Append("r", HistoryEntry{Seq: seq, Frame: rf.frame(big)})
	}
	if err := l.Flush(); !errors.Is(err, ErrLowDisk) {
		t.Fatalf("flush on a full disk: %v", err)
	}
	time.Sleep(200 * time.Millisecond) // let Pebble's flushes and compactions run
	close(stopWatch)
	<-watched
	t.Logf("floor reached at seq %d, lowest free space %d bytes: %+v", seq, minFree.Load(), l.Stats())
	if minFree.Load() < 1<<20 || strings.Contains(logs.String(), "no space") {
		t.Fatalf("the floor did not hold: %d bytes free at worst; log:\n%s", minFree.Load(), logs.String())
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for l.Stats().LowDisk || l.Stats().PendingRooms != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("never resumed: %+v", l.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	check := func(recs []RoomRecord, seq uint64) {
		t.Helper()
		if len(recs) != 1 || recs[0].Seq != seq {
			t.Fatalf("loaded %+v", recs)
		}
		h := recs[0].History
		if len(h) == 0 || h[len(h)-1].Seq != seq {
			t.Fatalf("history %d entries", len(h))
		}
		for i, e := range h {
			if e.Seq != h[0].Seq+uint64(i) || len(e.Payload) != len(big) {
				t.Fatalf("history has a gap at %d: %d", i, e.Seq)
			}
		}
	}
	recs, l2 := reload(t, l, dir)
	rf.check(t)
	check(recs, seq)

	// Now another process takes every last byte: nothing is written, Close
	// says what it could not write and returns, nothing committed is lost.
	committed := seq
	l2.PutMeta(RoomMeta{Code: "r", Epoch: "e", Seq: seq + 1})
	l2.Append("r", HistoryEntry{Seq: seq + 1, Frame: rf.frame(big)})
	free, _ = StatfsFree(mnt)
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break // ENOSPC
		}
	}
	for {
		if _, err := f.Write(chunk[:512]); err != nil {
			break
		}
	}
	f.Close()
	if free, _ := StatfsFree(mnt); free != 0 {
		t.Logf("%d bytes still free", free)
	}
	start := time.Now()
	if err := l2.Close(); !errors.Is(err, ErrLowDisk) || time.Since(start) > CloseTimeout {
		t.Fatalf("close on a full disk: %v after %v", err, time.Since(start))
	}
	rf.check(t)
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	l3 := openRooms(t, dir, RoomLogOptions{Logger: quiet})
	recs, err = l3.Load()
	if err != nil {
		t.Fatal(err)
	}
	check(recs, committed)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRoomLogMinFreeLowest crosses the lowest floor.
func TestRoomLogMinFreeLowest(t *testing.T) {
	for _, c := range []struct{ set, want uint64 }{{0, defaultMinFree}, {1, lowestMinFree}, {lowestMinFree - 1, lowestMinFree}, {lowestMinFree + 1, lowestMinFree + 1}} {
		l := openRooms(t, t.TempDir(), RoomLogOptions{MinFree: c.set})
		if got := l.minFree.Load(); got != c.want {
			t.Fatalf("MinFree %d: floor %d, want %d", c.set, got, c.want)
		}
		l.Close()
	}
}
