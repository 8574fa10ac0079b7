package webhook_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"partyline/dialect"
	"partyline/webhook"
)

const secret = "s3cret"

// delivery is one request the receiver got.
type delivery struct {
	ev     event
	id, ts string
	sig    string
	body   []byte
	at     time.Time
}

type event = webhook.Payload

// receiver is a real HTTP endpoint; answer decides each request's fate
// (an HTTP status, or 0 to hang until the request is cancelled).
type receiver struct {
	srv    *httptest.Server
	answer func(d delivery, attempt int) int

	mu       sync.Mutex
	all      []delivery     // every request, in arrival order
	acked    []delivery     // those answered 2xx
	attempts map[string]int // by event id
	inflight map[string]int // by room
	overlap  bool           // two requests of one room were in flight at once
	maxPar   int            // most requests in flight at once
	par      int
	done     chan struct{}
}

func newReceiver(t *testing.T, answer func(d delivery, attempt int) int) *receiver {
	rc := &receiver{answer: answer, attempts: map[string]int{}, inflight: map[string]int{}, done: make(chan struct{})}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(func() { close(rc.done); rc.srv.Close() })
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	d := delivery{id: r.Header.Get(webhook.HeaderEventID), ts: r.Header.Get(webhook.HeaderTimestamp),
		sig: r.Header.Get(webhook.HeaderSignature), body: body, at: time.Now()}
	if err := json.Unmarshal(body, &d.ev); err != nil || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request", 400)
		return
	}
	rc.mu.Lock()
	rc.attempts[d.id]++
	n := rc.attempts[d.id]
	rc.inflight[d.ev.Room]++
	if rc.inflight[d.ev.Room] > 1 {
		rc.overlap = true
	}
	rc.par++
	rc.maxPar = max(rc.maxPar, rc.par)
	rc.all = append(rc.all, d)
	rc.mu.Unlock()
	status := rc.answer(d, n)
	if status == 0 {
		select {
		case <-r.Context().Done():
		case <-rc.done:
		}
		status = 503
	}
	rc.mu.Lock()
	rc.inflight[d.ev.Room]--
	rc.par--
	if status/100 == 2 {
		rc.acked = append(rc.acked, d)
	}
	rc.mu.Unlock()
	w.WriteHeader(status)
}

func (rc *receiver) snapshot() (all, acked []delivery) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.all...), append([]delivery(nil), rc.acked...)
}

// waitFor polls cond (no fixed sleeps: a loaded machine is slow).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func newSender(t *testing.T, urls []string, tweak func(*webhook.Config)) *webhook.Sender {
	cfg := webhook.Config{URLs: urls, Secrets: []string{secret}, Node: "node-a",
		BackoffMin: 10 * time.Millisecond, BackoffMax: 200 * time.Millisecond, LogInterval: time.Hour}
	if tweak != nil {
		tweak(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := webhook.New(cfg)
	t.Cleanup(func() { s.Close(5 * time.Second) })
	return s
}

func ev(typ dialect.EventType, room string, n int) dialect.Event {
	return dialect.Event{Type: typ, Dialect: "party", Room: room, ClientID: "c" + strconv.Itoa(n)}
}

func TestSignature(t *testing.T) {
	rc := newReceiver(t, func(delivery, int) int { return 204 })
	s := newSender(t, []string{rc.srv.URL}, func(c *webhook.Config) { c.Secrets = []string{secret, "next-secret"} })
	s.Emit(dialect.Event{Type: dialect.MemberJoined, Dialect: "party", Room: "AB\"CD", ClientID: "ü\n<x>"})
	waitFor(t, "a delivery", func() bool { _, a := rc.snapshot(); return len(a) == 1 })
	_, acked := rc.snapshot()
	d := acked[0]
	if d.ev.Type != "member.joined" || d.ev.Room != "AB\"CD" || d.ev.ClientID != "ü\n<x>" || d.ev.Node != "node-a" || d.ev.Dialect != "party" {
		t.Fatalf("event %+v", d.ev)
	}
	if d.ev.ID != d.id || len(d.id) < 16 {
		t.Fatalf("id %q, header %q", d.ev.ID, d.id)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", d.ev.Time); err != nil {
		t.Fatalf("time %q: %v", d.ev.Time, err)
	}
	if strings.Count(d.sig, "v1=") != 2 {
		t.Fatalf("signature %q: want one v1= per secret", d.sig)
	}
	now := time.Now()
	ts, _ := strconv.ParseInt(d.ts, 10, 64)
	for _, c := range []struct {
		name, secret, ts, sig string
		body                  []byte
		now                   time.Time
		ok                    bool
	}{
		{"right secret", secret, d.ts, d.sig, d.body, now, true},
		{"rotated secret", "next-secret", d.ts, d.sig, d.body, now, true},
		{"wrong secret", "other", d.ts, d.sig, d.body, now, false},
		{"body changed", secret, d.ts, d.sig, append(append([]byte(nil), d.body...), ' '), now, false},
		{"timestamp changed", secret, strconv.FormatInt(ts+1, 10), d.sig, d.body, now, false},
		{"clock 6 minutes ahead", secret, d.ts, d.sig, d.body, now.Add(6 * time.Minute), false},
		{"clock 6 minutes behind", secret, d.ts, d.sig, d.body, now.Add(-6 * time.Minute), false},
		{"no signature", secret, d.ts, "", d.body, now, false},
		{"other scheme", secret, d.ts, strings.ReplaceAll(d.sig, "v1=", "v0="), d.body, now, false},
		{"bad timestamp", secret, "x", d.sig, d.body, now, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := webhook.Verify(c.secret, c.ts, c.sig, c.body, c.now)
			if (err == nil) != c.ok {
				t.Fatalf("Verify: %v, want ok=%v", err, c.ok)
			}
		})
	}
}

// TestOrderPerRoom: many rooms emit concurrently to two URLs whose
// receiver is randomly slow and sometimes fails; each URL gets each room's
// events acknowledged in emission order, with never two of one room in
// flight, while rooms proceed in parallel.
func TestOrderPerRoom(t *testing.T) {
	const rooms, per = 40, 25
	answer := func(d delivery, attempt int) int {
		time.Sleep(time.Duration(rand.IntN(3)) * time.Millisecond)
		if rand.IntN(10) == 0 {
			return 500
		}
		return 200
	}
	rc1, rc2 := newReceiver(t, answer), newReceiver(t, answer)
	s := newSender(t, []string{rc1.srv.URL, rc2.srv.URL + "/second"}, nil)
	var wg sync.WaitGroup
	for r := range rooms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				s.Emit(ev(dialect.MemberJoined, fmt.Sprintf("R%03d", r), i))
			}
		}()
	}
	wg.Wait()
	for _, rc := range []*receiver{rc1, rc2} {
		waitFor(t, "every event", func() bool { _, a := rc.snapshot(); return len(a) == rooms*per })
		_, acked := rc.snapshot()
		next := map[string]int{}
		for _, d := range acked {
			want := "c" + strconv.Itoa(next[d.ev.Room])
			if d.ev.ClientID != want {
				t.Fatalf("room %s: got %s, want %s", d.ev.Room, d.ev.ClientID, want)
			}
			next[d.ev.Room]++
		}
		rc.mu.Lock()
		overlap, par := rc.overlap, rc.maxPar
		rc.mu.Unlock()
		if overlap {
			t.Fatal("two deliveries of one room were in flight at once")
		}
		if par < 2 {
			t.Fatalf("at most %d delivery in flight: rooms are not delivered in parallel", par)
		}
	}
	waitFor(t, "an empty queue", func() bool { return s.Pending() == 0 })
}

// TestRetry: a receiver that fails the first attempts of every event, by
// status or by not answering within the timeout, gets every event, with
// growing gaps between attempts.
func TestRetry(t *testing.T) {
	for _, c := range []struct {
		name  string
		fails int
		how   int // status of a failed attempt; 0: hang past the timeout
	}{
		{"500", 3, 500},
		{"429", 2, 429},
		{"redirect", 1, 302},
		{"timeout", 2, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			rc := newReceiver(t, func(d delivery, attempt int) int {
				if attempt <= c.fails {
					return c.how
				}
				return 200
			})
			s := newSender(t, []string{rc.srv.URL}, func(cfg *webhook.Config) {
				cfg.Timeout = 300 * time.Millisecond
				cfg.BackoffMin, cfg.BackoffMax = 40*time.Millisecond, time.Second
			})
			const n = 5
			for i := range n {
				s.Emit(ev(dialect.RoomCreated, "ROOM"+strconv.Itoa(i), i))
			}
			waitFor(t, "every event acknowledged", func() bool { _, a := rc.snapshot(); return len(a) == n })
			all, _ := rc.snapshot()
			if len(all) != n*(c.fails+1) {
				t.Fatalf("%d requests, want %d", len(all), n*(c.fails+1))
			}
			byID := map[string][]time.Time{}
			for _, d := range all {
				byID[d.id] = append(byID[d.id], d.at)
			}
			for id, at := range byID {
				for k := 1; k < len(at); k++ {
					// attempt k+1 waits at least half of BackoffMin*2^(k-1) (jitter)
					if gap, least := at[k].Sub(at[k-1]), 20*time.Millisecond<<(k-1); gap < least {
						t.Fatalf("event %s: attempt %d came %v after the previous one, want at least %v", id, k+1, gap, least)
					}
				}
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(s.Collectors()...)
			waitFor(t, "the counters", func() bool {
				return metric(t, reg, "partyline_webhook_delivered_total") == n &&
					metric(t, reg, "partyline_webhook_failed_total") == float64(n*c.fails)
			})
			if got := metric(t, reg, "partyline_webhook_retries_total"); got != float64(n*c.fails) {
				t.Fatalf("retries %v, want %d", got, n*c.fails)
			}
		})
	}
}

// TestAtLeastOnce: a receiver that fails its first N requests whatever
// they are still gets every event; duplicates carry the same id.
func TestAtLeastOnce(t *testing.T) {
	var seen atomic.Int64
	rc := newReceiver(t, func(delivery, int) int {
		if seen.Add(1) <= 60 {
			return 503
		}
		return 200
	})
	s := newSender(t, []string{rc.srv.URL}, nil)
	const n = 200
	for i := range n {
		s.Emit(ev(dialect.MemberLeft, "R"+strconv.Itoa(i%17), i))
	}
	waitFor(t, "every event", func() bool {
		_, acked := rc.snapshot()
		ids := map[string]bool{}
		for _, d := range acked {
			ids[d.id] = true
		}
		return len(ids) == n
	})
	all, _ := rc.snapshot()
	bodies := map[string]string{}
	for _, d := range all {
		if b, ok := bodies[d.id]; ok && b != string(d.body) {
			t.Fatalf("event %s sent with two bodies:\n%s\n%s", d.id, b, d.body)
		}
		bodies[d.id] = string(d.body)
	}
}

// TestExpired: an event that fails MaxAttempts times is dropped and
// counted, and its room's later events still go out.
func TestExpired(t *testing.T) {
	rc := newReceiver(t, func(d delivery, _ int) int {
		if d.ev.ClientID == "c0" {
			return 500
		}
		return 200
	})
	s := newSender(t, []string{rc.srv.URL}, func(c *webhook.Config) { c.MaxAttempts = 3 })
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collectors()...)
	s.Emit(ev(dialect.MemberJoined, "ROOM", 0))
	s.Emit(ev(dialect.MemberJoined, "ROOM", 1))
	waitFor(t, "the second event", func() bool { _, a := rc.snapshot(); return len(a) == 1 })
	all, _ := rc.snapshot()
	if len(all) != 4 || all[3].ev.ClientID != "c1" {
		t.Fatalf("%d requests; want 3 attempts of c0, then c1", len(all))
	}
	if got := metricL(t, reg, "partyline_webhook_dropped_total", "reason", "expired"); got != 1 {
		t.Fatalf("expired drops %v, want 1", got)
	}
}

// TestOverflow: with a receiver that hangs, Emit never blocks; events past
// the queue are dropped, counted, and logged once per interval.
func TestOverflow(t *testing.T) {
	rc := newReceiver(t, func(delivery, int) int { return 0 })
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		logMu.Lock()
		defer logMu.Unlock()
		return logs.Write(p)
	}), nil))
	s := newSender(t, []string{rc.srv.URL}, func(c *webhook.Config) {
		c.Queue, c.Timeout, c.LogInterval, c.Logger = 10, time.Hour, 50*time.Millisecond, log
	})
	reg := prometheus.NewRegistry()
	reg.MustRegister(s.Collectors()...)
	const n = 5000
	done := make(chan time.Duration)
	go func() { // as an event loop would
		start := time.Now()
		for i := range n {
			s.Emit(ev(dialect.MemberJoined, "R"+strconv.Itoa(i%3), i))
		}
		done <- time.Since(start)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Emit blocked behind a hanging receiver")
	}
	if got := metricL(t, reg, "partyline_webhook_dropped_total", "reason", "full"); got != n-10 {
		t.Fatalf("dropped(full) %v, want %d", got, n-10)
	}
	if got := metric(t, reg, "partyline_webhook_queue_depth"); got != 10 {
		t.Fatalf("queue depth %v, want 10", got)
	}
	waitFor(t, "the drop log line", func() bool {
		logMu.Lock()
		defer logMu.Unlock()
		return strings.Contains(logs.String(), "queue_full=4990")
	})
	logMu.Lock()
	lines := strings.Count(logs.String(), "webhook events dropped")
	logMu.Unlock()
	if lines != 1 {
		t.Fatalf("%d drop log lines, want 1 (one per interval, not per event)", lines)
	}
	s.Close(100 * time.Millisecond) // the receiver never answers
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestCloseDrains: Close waits for the queue to drain; with a receiver
// that hangs, it gives up after its timeout and counts what is left.
func TestCloseDrains(t *testing.T) {
	t.Run("drained", func(t *testing.T) {
		rc := newReceiver(t, func(delivery, int) int { time.Sleep(20 * time.Millisecond); return 200 })
		s := newSender(t, []string{rc.srv.URL}, nil)
		for i := range 30 {
			s.Emit(ev(dialect.RoomClosed, "R"+strconv.Itoa(i%4), i))
		}
		if left := s.Close(30 * time.Second); left != 0 {
			t.Fatalf("%d events left", left)
		}
		if _, acked := rc.snapshot(); len(acked) != 30 {
			t.Fatalf("%d delivered, want 30", len(acked))
		}
		s.Emit(ev(dialect.RoomClosed, "late", 0)) // after Close: dropped, never blocks
	})
	t.Run("gives up", func(t *testing.T) {
		rc := newReceiver(t, func(delivery, int) int { return 0 })
		s := newSender(t, []string{rc.srv.URL}, func(c *webhook.Config) { c.Timeout = time.Hour })
		reg := prometheus.NewRegistry()
		reg.MustRegister(s.Collectors()...)
		for i := range 7 {
			s.Emit(ev(dialect.RoomClosed, "R", i))
		}
		start := time.Now()
		if left := s.Close(200 * time.Millisecond); left != 7 {
			t.Fatalf("%d events left, want 7", left)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("Close took %v", d)
		}
		if got := metricL(t, reg, "partyline_webhook_dropped_total", "reason", "shutdown"); got != 7 {
			t.Fatalf("dropped(shutdown) %v, want 7", got)
		}
	})
}

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  webhook.Config
		err  string
	}{
		{"off", webhook.Config{}, ""},
		{"ok", webhook.Config{URLs: []string{"https://example.com/hook"}, Secrets: []string{"x"}}, ""},
		{"no secret", webhook.Config{URLs: []string{"http://127.0.0.1:9/h"}}, "needs --webhook-secret"},
		{"empty secret", webhook.Config{URLs: []string{"http://127.0.0.1:9/h"}, Secrets: []string{""}}, "empty secret"},
		{"scheme", webhook.Config{URLs: []string{"ftp://example.com/"}, Secrets: []string{"x"}}, "http:// or https://"},
		{"relative", webhook.Config{URLs: []string{"/hook"}, Secrets: []string{"x"}}, "http:// or https://"},
		{"no host", webhook.Config{URLs: []string{"http:///hook"}, Secrets: []string{"x"}}, "no host"},
		{"unparsable", webhook.Config{URLs: []string{"http://[::1"}, Secrets: []string{"x"}}, "--webhook-url"},
		{"negative queue", webhook.Config{URLs: []string{"http://h/"}, Secrets: []string{"x"}, Queue: -1}, "webhook-queue"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.cfg.Validate()
			if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
				t.Fatalf("Validate: %v, want %q", err, c.err)
			}
		})
	}
}

// FuzzVerify: Verify parses the signature and timestamp headers a
// receiver got from anyone; it never panics, and accepts exactly what
// Sign produced for the same secret, timestamp and body.
func FuzzVerify(f *testing.F) {
	f.Add("secret", "1700000000", "v1=00", []byte(`{"id":"x"}`))
	f.Add("k", "-1", "v1=,v1=zz, v0=ab", []byte{})
	f.Add("", "99999999999999999999", ",,,", []byte("x"))
	f.Fuzz(func(t *testing.T, sec, ts, sig string, body []byte) {
		now := time.Unix(1700000000, 0)
		_ = webhook.Verify(sec, ts, sig, body, now)
		good := webhook.Sign([]string{sec}, "1700000000", body)
		if err := webhook.Verify(sec, "1700000000", sig+","+good, body, now); err != nil {
			t.Fatalf("a valid signature among others was refused: %v", err)
		}
		if webhook.Verify(sec+"x", "1700000000", good, body, now) == nil {
			t.Fatal("another secret verified")
		}
	})
}

func metric(t *testing.T, reg *prometheus.Registry, name string) float64 {
	return metricL(t, reg, name, "", "")
}

// metricL reads a counter or gauge (with label k=v, if k is set).
func metricL(t *testing.T, reg *prometheus.Registry, name, k, v string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			match := k == ""
			for _, l := range m.GetLabel() {
				if l.GetName() == k && l.GetValue() == v {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	return -1
}

// TestEmitAllocs: Emit, on an event loop's hot path, allocates nothing,
// whether the event is queued or dropped.
func TestEmitAllocs(t *testing.T) {
	rc := newReceiver(t, func(delivery, int) int { return 0 })
	s := newSender(t, []string{rc.srv.URL}, func(c *webhook.Config) { c.Queue, c.Timeout = 4, time.Hour })
	e := dialect.Event{Type: dialect.MemberJoined, Dialect: "party", Room: "ABCD", ClientID: "alice"}
	if n := testing.AllocsPerRun(1000, func() { s.Emit(e) }); n != 0 {
		t.Fatalf("Emit allocates %v times", n)
	}
	s.Close(100 * time.Millisecond)
}
