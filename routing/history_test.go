package routing

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// publish sends a sequenced frame from (to: "" for everyone but from) and
// returns its seq.
func publish(r *Room, body, from, to string) uint64 {
	seq := r.BeginSeq()
	f := text(fmt.Sprintf(`{"n":%d,"b":%q}`, seq, body))
	if to != "" {
		if m := r.LookupLocked([]byte(to)); m != nil {
			m.Conn.Send(f, false)
		}
	} else {
		var except Sender
		if m := r.LookupLocked([]byte(from)); m != nil {
			except = m.Conn
		}
		r.Broadcast(f, except, false)
	}
	r.CommitSeq(f, from, to)
	r.EndSeq()
	f.Release()
	return seq
}

func replayed(r *Room, id string, since uint64) ([]string, bool) {
	var out []string
	r.mu.Lock()
	ok := r.Replay(id, since, func(e *Entry) { out = append(out, string(payload(e.F))) })
	r.mu.Unlock()
	return out, ok
}

func TestHistoryReplayAddressing(t *testing.T) {
	h := NewHub()
	var held Gauge
	r := h.CreateSequenced("R", 0, time.Time{}, "E1", 0, HistoryLimits{Size: 100, Bytes: 1 << 20, TTL: time.Hour}, &held)
	a, _ := member("a")
	b, _ := member("b")
	mustJoin(t, r, a)
	mustJoin(t, r, b)
	publish(r, "a to all", "a", "")  // 1: for b
	publish(r, "b to all", "b", "")  // 2: for a
	publish(r, "a to b", "a", "b")   // 3: for b
	publish(r, "b to b", "b", "b")   // 4: for b (to itself)
	publish(r, "server all", "", "") // 5: for both
	got, ok := replayed(r, "b", 0)
	if !ok || len(got) != 4 || !strings.Contains(got[0], "a to all") || !strings.Contains(got[3], "server all") {
		t.Fatalf("b's replay from 0: %v %v", ok, got)
	}
	got, ok = replayed(r, "a", 2)
	if !ok || len(got) != 1 || !strings.Contains(got[0], "server all") {
		t.Fatalf("a's replay from 2: %v %v", ok, got)
	}
	if got, ok = replayed(r, "a", 5); !ok || len(got) != 0 {
		t.Fatalf("nothing missed: %v %v", ok, got)
	}
	if _, ok = replayed(r, "a", 6); ok {
		t.Fatal("an offset from the future recovered")
	}
	if held.Load() <= 0 {
		t.Fatal("held bytes not counted")
	}
	if epoch, seq := r.Offset(); epoch != "E1" || seq != 5 {
		t.Fatalf("offset %s/%d", epoch, seq)
	}
}

func TestHistoryLimits(t *testing.T) {
	cases := []struct {
		name   string
		lim    HistoryLimits
		sends  int
		wait   time.Duration
		oldest uint64 // the lowest since that still recovers
	}{
		{"size", HistoryLimits{Size: 4, Bytes: 1 << 20, TTL: time.Hour}, 10, 0, 6},
		{"bytes", HistoryLimits{Size: 100, Bytes: 60, TTL: time.Hour}, 10, 0, 7}, // 19-20-byte frames: 3 fit
		{"ttl", HistoryLimits{Size: 100, Bytes: 1 << 20, TTL: 20 * time.Millisecond}, 10, 40 * time.Millisecond, 10},
		{"disabled", HistoryLimits{}, 10, 0, 10},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var held Gauge
			r := NewHub().CreateSequenced("R", 0, time.Time{}, "E", 0, tc.lim, &held)
			a, _ := member("a")
			mustJoin(t, r, a)
			for i := range tc.sends {
				publish(r, fmt.Sprintf("%03d", i), "", "") // ~30-byte frames
			}
			time.Sleep(tc.wait)
			if tc.wait > 0 {
				r.ExpireHistory(time.Now())
			}
			if _, ok := replayed(r, "a", tc.oldest-1); ok {
				t.Fatalf("since %d recovered although %d has left history", tc.oldest-1, tc.oldest)
			}
			got, ok := replayed(r, "a", tc.oldest)
			if !ok || len(got) != tc.sends-int(tc.oldest) {
				t.Fatalf("since %d: %v, %d frames, want %d", tc.oldest, ok, len(got), tc.sends-int(tc.oldest))
			}
			r.Leave(a) // the room dies: its history is released
			if held.Load() != 0 {
				t.Fatalf("%d bytes held after the room died", held.Load())
			}
		})
	}
}

func TestHistoryRestoreAndSkipLost(t *testing.T) {
	lim := HistoryLimits{Size: 100, Bytes: 1 << 20, TTL: time.Hour}
	r := NewHub().CreateSequenced("R", 0, time.Time{}, "E", 3, lim, nil)
	var es []Entry
	for s := uint64(4); s <= 6; s++ {
		es = append(es, Entry{Seq: s, At: time.Now().UnixNano(), F: NewTextExact([]byte(fmt.Sprintf(`{"n":%d}`, s)))})
	}
	r.Restore(es)
	r.SkipLost(100) // a crash: up to 100 frames after 6 may be lost
	a, _ := member("a")
	mustJoin(t, r, a)
	if got, ok := replayed(r, "a", 4); !ok || len(got) != 2 {
		t.Fatalf("since 4 (kept): %v %v", ok, got)
	}
	if _, ok := replayed(r, "a", 3); !ok {
		t.Fatal("since 3: every frame after it was restored")
	}
	if _, ok := replayed(r, "a", 2); ok {
		t.Fatal("since 2: frame 3 was not kept")
	}
	if _, ok := replayed(r, "a", 50); ok {
		t.Fatal("since 50: the client saw a frame the crash lost")
	}
	if s := publish(r, "next", "", ""); s != 107 {
		t.Fatalf("first seq after the crash %d, want 107", s)
	}
	if _, ok := replayed(r, "a", 106); ok {
		t.Fatal("since 106: the last seq the crash may have lost")
	}
	publish(r, "next", "", "")
	if got, ok := replayed(r, "a", 107); !ok || len(got) != 1 {
		t.Fatalf("since 107: %v %v", ok, got)
	}
}

func TestSwapKeepsPlace(t *testing.T) {
	r := NewHub().Create("R", 2)
	a, _ := member("a")
	b, _ := member("b")
	mustJoin(t, r, a)
	mustJoin(t, r, b)
	away := &Member{ID: "a", Conn: Away}
	if !r.Swap(a, away, nil) {
		t.Fatal("swap refused")
	}
	if got := ids(r.Members()); got[0] != "a" || r.Members()[0] != away {
		t.Fatalf("members %v", got)
	}
	if r.Swap(a, away, nil) {
		t.Fatal("swapped a member that is no longer there")
	}
	c, _ := member("c")
	if _, err := r.Join(c, nil, nil); err != ErrRoomFull {
		t.Fatalf("the away seat does not count: %v", err)
	}
	if n := r.Broadcast(text("x"), nil, false); n != 1 {
		t.Fatalf("broadcast reached %d, want 1 (away takes nothing)", n)
	}
}

// History keeps what it counts: a frame in an oversized pooled buffer is
// kept as an exact-size copy.
func TestHistoryCompactsOversizedFrames(t *testing.T) {
	var held Gauge
	r := NewHub().CreateSequenced("R", 0, time.Time{}, "E", 0, HistoryLimits{Size: 8, Bytes: 1 << 20, TTL: time.Hour}, &held)
	a, _ := member("a")
	mustJoin(t, r, a)
	big := NewText()
	big.SetBuf(append(big.Buf(), make([]byte, 60<<10)...)) // grow the buffer to 60 KiB...
	big.SetBuf(big.Buf()[:10])                             // ...then write a small frame in it
	big.AppendStr(`{"n":1}`)
	big.End()
	r.BeginSeq()
	r.CommitSeq(big, "", "")
	r.EndSeq()
	big.Release()
	r.History(func(e *Entry) {
		if c := cap(e.F.buf); c > 1024 {
			t.Fatalf("history keeps a %d-byte buffer for a %d-byte frame", c, e.F.Len())
		}
		if string(payload(e.F)) != `{"n":1}` {
			t.Fatalf("payload %q", payload(e.F))
		}
	})
}

func TestNewTextExact(t *testing.T) {
	for _, n := range []int{0, 125, 126, 65535, 65536} {
		p := make([]byte, n)
		f := NewTextExact(p)
		if len(payload(f)) != n || cap(f.buf) != f.Len() || string(f.Payload()) != string(p) {
			t.Fatalf("n=%d: payload %d, cap %d, len %d", n, len(payload(f)), cap(f.buf), f.Len())
		}
		f.Release()
	}
}

// A publish that reaches a room closed under it (CloseIf between the
// publisher's check and its BeginSeq) files nothing: nobody would release it.
func TestCommitAfterCloseKeepsNothing(t *testing.T) {
	var held Gauge
	r := NewHub().CreateSequenced("R", 0, time.Time{}, "E", 0, HistoryLimits{Size: 8, Bytes: 1 << 20, TTL: time.Hour}, &held)
	if _, err := r.Join(&Member{ID: "a", Conn: Away}, nil, nil); err != nil {
		t.Fatal(err)
	}
	publish(r, "before", "a", "")
	if held.Load() == 0 {
		t.Fatal("history holds nothing before the close")
	}
	if _, ok := r.CloseIf(func([]*Member) bool { return true }); !ok {
		t.Fatal("CloseIf did not close")
	}
	publish(r, "after", "a", "")
	if n := held.Load(); n != 0 {
		t.Fatalf("a closed room holds %d bytes of history", n)
	}
}
