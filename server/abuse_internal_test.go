package server

import (
	"encoding/json"
	"testing"
	"time"

	"partyline/dialect"
	"partyline/dialect/channels"
	"partyline/dialect/chat"
	"partyline/dialect/echo"
	"partyline/dialect/notify"
	"partyline/dialect/party"
	"partyline/dialect/presence"
	"partyline/dialect/rooms"
	"partyline/dialect/teams"
	"partyline/dialect/wsecho"
	"partyline/routing"
)

// The per-message check, allowed or dropped within a run of drops, does
// not allocate.
func TestRateCheckAllocationFree(t *testing.T) {
	cfg := Defaults()
	cfg.MaxBytesPerSec = 1 << 20
	r := rateState{lim: inboundFor(&cfg, nil)}
	now := int64(1e18)
	if n := testing.AllocsPerRun(1000, func() {
		now += int64(time.Millisecond) // 1,000 a second: always allowed
		if !r.allow(100, now) {
			t.Fatal("refused under the rate")
		}
	}); n != 0 {
		t.Fatalf("allowed message: %.1f allocations", n)
	}
	for r.allow(100, now) { // spend the burst
	}
	if n := testing.AllocsPerRun(1000, func() {
		if r.allow(100, now) {
			t.Fatal("allowed over the rate")
		}
		r.dropped(now, time.Hour)
	}); n != 0 {
		t.Fatalf("dropped message: %.1f allocations", n)
	}
}

// The drop policy: a reply at most once a second, a close once the drops
// have lasted the grace with no gap of a second, a new run after a gap.
func TestRateDropPolicy(t *testing.T) {
	r := rateState{lim: &inbound{msgRate: 1, msgBurst: 1, reply: routing.NewTextFrom([]byte(`{}`))}}
	const s, ms = int64(time.Second), int64(time.Millisecond)
	for i, st := range []struct {
		at                  int64
		start, reply, close bool
	}{
		{at: 0, start: true, reply: true},
		{at: 500 * ms},
		{at: 1250 * ms, reply: true},          // within a second of the last drop: the same run
		{at: 3 * s, start: true, reply: true}, // after a gap of over a second: a new run
		{at: 3900 * ms},
		{at: 4800 * ms, reply: true},
		{at: 5700 * ms},
		{at: 6600 * ms, reply: true},
		{at: 8 * s, start: true, reply: true}, // the run that lasted 3.6 s ended
		{at: 8900 * ms},
		{at: 9800 * ms, reply: true},
		{at: 10700 * ms},
		{at: 11600 * ms, reply: true},
		{at: 12500 * ms},
		{at: 13 * s, close: true}, // 5 s into the run
	} {
		start, reply, closeIt := r.dropped(st.at+1, 5*time.Second)
		if start != st.start || reply != st.reply || closeIt != st.close {
			t.Fatalf("step %d: start=%v reply=%v close=%v, want %v %v %v", i, start, reply, closeIt, st.start, st.reply, st.close)
		}
	}
}

// Every built-in dialect answers a dropped message in its own error
// format.
func TestRateLimitReplies(t *testing.T) {
	cfg := Defaults()
	cfg.DataDir = t.TempDir()
	cfg.Party.Persist = false
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	core := presence.NewCore(cfg.Presence, cfg.JWT, cfg.DataDir, cfg.Logger)
	ds := []dialect.Dialect{party.New(cfg.Party), party.NewV2(cfg.Party), teams.New(cfg.Teams), channels.New(cfg.Channels),
		echo.New(), rooms.New(cfg.Rooms), notify.New(cfg.Notify), chat.New(core), presence.New(core), wsecho.New()}
	want := map[string]string{
		"party": `{"type":"error","message":"rate limit exceeded"}`, "rooms": `{"type":"error","message":"rate limit exceeded"}`,
		"channels": `{"type":"error","message":"rate limit exceeded"}`, "notify": `{"type":"error","message":"rate limit exceeded"}`,
		"echo": `{"type":"error","message":"rate limit exceeded"}`, "teams": `{"type":"error","data":"rate limit exceeded"}`,
		"chat": `{"type":"ERROR","msg":"rate limit exceeded"}`, "presence": `{"type":"ERROR","msg":"rate limit exceeded"}`,
		"party-v2": `{"type":"error","message":"rate limit exceeded"}`,
	}
	for _, d := range ds {
		in := inboundFor(&cfg, d)
		if d.Name() == "wsecho" { // a raw echo has no error format: it drops silently
			if in.reply != nil {
				t.Errorf("wsecho: a rate-limit reply %q", in.reply.Payload())
			}
			continue
		}
		w, ok := want[d.Name()]
		if !ok {
			t.Errorf("dialect %s: no expected reply listed", d.Name())
			continue
		}
		if in.reply == nil {
			t.Errorf("dialect %s: no rate-limit reply", d.Name())
			continue
		}
		var got, exp any
		if err := json.Unmarshal(in.reply.Payload(), &got); err != nil {
			t.Fatalf("%s: %q: %v", d.Name(), in.reply.Payload(), err)
		}
		_ = json.Unmarshal([]byte(w), &exp)
		if b1, b2 := mustJSON(got), mustJSON(exp); b1 != b2 {
			t.Errorf("dialect %s: reply %s, want %s", d.Name(), b1, b2)
		}
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
