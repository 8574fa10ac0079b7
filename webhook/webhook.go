// Package webhook delivers room and member events (dialect.Event) to the
// URLs of --webhook-url as signed JSON POSTs: it owns the bounded event
// queue, the per-room delivery order, retries with backoff, the HTTP
// client and the webhook metrics. docs/api.md "Webhooks" is the contract.
//
// Concurrency rules:
//   - Emit is called from event loops (and API or cluster goroutines),
//     often under a room's lock. It never blocks and does not allocate: it
//     reserves a place in the bounded queue (an atomic counter) and sends
//     the event value into a channel with room for every reserved place.
//     When the queue is full, or the sender is closing, the event is
//     dropped and counted (partyline_webhook_dropped_total{reason}); the
//     drops are logged once per LogInterval, never per event.
//   - One dispatcher goroutine takes events in Emit order, encodes each
//     once and appends it to one lane per (URL, dialect, room). A lane has
//     at most one delivery in flight, so a room's events reach each URL in
//     the order they were emitted; different rooms and URLs are
//     independent.
//   - A fixed pool of Workers goroutines posts the head of ready lanes. A
//     failed attempt (non-2xx, transport error, timeout) is retried after
//     an exponential backoff with jitter, scheduled by a timer, so a
//     waiting lane holds no worker. An event that still fails after
//     MaxAttempts, or older than MaxAge, is dropped (reason "expired") and
//     its lane moves on. Delivery is at least once: receivers dedupe by id.
//   - Close stops accepting events and waits up to its timeout for the
//     queue to drain, then cancels what is in flight; what is left is
//     counted as dropped (reason "shutdown").
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"partyline/codec"
	"partyline/dialect"
)

// Headers of every delivery.
const (
	HeaderEventID   = "Partyline-Event-Id"
	HeaderTimestamp = "Partyline-Timestamp"
	HeaderSignature = "Partyline-Signature"
)

// Config configures a Sender. Zero fields take the defaults of Defaults.
type Config struct {
	URLs    []string // every event goes to each (--webhook-url, repeatable)
	Secrets []string // each signs every delivery (--webhook-secret; several during a rotation)
	Node    string   // "node" of every event: this node's name

	Queue       int           // events waiting or in flight at most (--webhook-queue); 10,000
	Workers     int           // delivery goroutines (--webhook-workers); 32
	Timeout     time.Duration // one attempt, connection included (--webhook-timeout); 5s
	MaxAttempts int           // attempts per event and URL before it is dropped (--webhook-max-attempts); 12
	MaxAge      time.Duration // an event older than this is not retried again (--webhook-max-age); 10m
	BackoffMin  time.Duration // the first retry's backoff; 250ms
	BackoffMax  time.Duration // backoff cap; 30s
	LogInterval time.Duration // drops and failures are logged at most this often; 10s
	Drain       time.Duration // a graceful shutdown waits this long at most for queued events (--webhook-drain); 5s

	Logger *slog.Logger      // nil: slog.Default()
	Client *http.Client      // nil: a client with Timeout and keep-alive
	Now    func() time.Time  // nil: time.Now (tests)
	Labels prometheus.Labels // constant labels of the metrics (the server's node)
}

// Defaults returns the documented defaults (no URLs).
func Defaults() Config {
	return Config{Queue: 10_000, Workers: 32, Timeout: 5 * time.Second, MaxAttempts: 12,
		MaxAge: 10 * time.Minute, BackoffMin: 250 * time.Millisecond, BackoffMax: 30 * time.Second,
		LogInterval: 10 * time.Second, Drain: 5 * time.Second}
}

// Enabled reports whether any URL is configured.
func (c *Config) Enabled() bool { return len(c.URLs) > 0 }

// Validate checks c and fills zero fields with defaults. A URL must be an
// absolute http or https URL, and URLs need a secret.
func (c *Config) Validate() error {
	d := Defaults()
	for _, u := range c.URLs {
		if err := checkURL(u); err != nil {
			return err
		}
	}
	for _, s := range c.Secrets {
		if s == "" {
			return errors.New("--webhook-secret: empty secret")
		}
	}
	if len(c.URLs) > 0 && len(c.Secrets) == 0 {
		return errors.New("--webhook-url needs --webhook-secret: every delivery is signed")
	}
	for _, f := range []struct {
		name string
		v    int64
	}{{"webhook-queue", int64(c.Queue)}, {"webhook-workers", int64(c.Workers)}, {"webhook-max-attempts", int64(c.MaxAttempts)},
		{"webhook-timeout", int64(c.Timeout)}, {"webhook-max-age", int64(c.MaxAge)}, {"webhook-drain", int64(c.Drain)}} {
		if f.v < 0 {
			return fmt.Errorf("--%s must not be negative", f.name)
		}
	}
	if c.Queue == 0 {
		c.Queue = d.Queue
	}
	if c.Workers == 0 {
		c.Workers = d.Workers
	}
	if c.Timeout == 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = d.MaxAttempts
	}
	if c.MaxAge == 0 {
		c.MaxAge = d.MaxAge
	}
	if c.BackoffMin <= 0 {
		c.BackoffMin = d.BackoffMin
	}
	if c.BackoffMax < c.BackoffMin {
		c.BackoffMax = max(d.BackoffMax, c.BackoffMin)
	}
	if c.LogInterval <= 0 {
		c.LogInterval = d.LogInterval
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("--webhook-url %q: %w", s, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("--webhook-url %q: want an http:// or https:// URL", s)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("--webhook-url %q: no host", s)
	}
	if u.Fragment != "" {
		return fmt.Errorf("--webhook-url %q: a fragment is never sent", s)
	}
	return nil
}

// Payload is a delivery's body as a receiver decodes it (encoding/json).
type Payload struct {
	ID       string `json:"id"`
	Type     string `json:"type"`
	Dialect  string `json:"dialect"`
	Room     string `json:"room"`
	ClientID string `json:"clientId,omitempty"`
	Username string `json:"username,omitempty"`
	Node     string `json:"node,omitempty"`
	Time     string `json:"time"` // RFC 3339, UTC, milliseconds
}

// Sender queues events and delivers them. Its Emit is dialect.Events.
type Sender struct {
	cfg     Config
	log     *slog.Logger
	client  *http.Client
	now     func() time.Time
	targets []*target

	in      chan dialect.Event // capacity Queue: a reserved place always fits
	pending atomic.Int64       // events reserved and not yet finished for every URL
	ready   chan *lane         // lanes with a head to post; capacity Queue*len(URLs)
	closing atomic.Bool

	ctx     context.Context // cancelled when Close gives up
	cancel  context.CancelFunc
	stopped chan struct{} // closed by Close: workers and the dispatcher return
	wg      sync.WaitGroup
	idle    chan struct{} // signalled when pending reaches 0 (Close waits on it)

	full, late, shut atomic.Int64 // drops since the last log line, by reason
	fails            atomic.Int64 // failed attempts since the last log line
	lastErr          atomic.Pointer[string]

	m senderMetrics
}

type senderMetrics struct {
	dropped   *prometheus.CounterVec
	delivered prometheus.Counter
	failed    prometheus.Counter
	retries   prometheus.Counter
	delay     prometheus.Histogram
	depth     prometheus.GaugeFunc
}

// target is one URL and its lanes.
type target struct {
	url   string
	mu    sync.Mutex
	lanes map[laneKey]*lane // lanes with events; guarded by mu
}

type laneKey struct{ dialect, room string }

// lane is one room's events for one URL: q[0] is posted by one worker at a
// time (a lane is in ready, in a worker or in a retry timer only while
// busy).
type lane struct {
	t        *target
	key      laneKey
	q        []*job // guarded by t.mu
	attempts int    // of q[0]; only the worker holding the lane touches it
}

// job is one event, encoded once, shared by every URL's lane.
type job struct {
	id   string
	body []byte
	at   time.Time    // when it was emitted
	left atomic.Int32 // URLs that have not finished it
}

// New starts a Sender (its dispatcher and workers). cfg must have been
// validated and have at least one URL.
func New(cfg Config) *Sender {
	s := &Sender{cfg: cfg, log: cfg.Logger, client: cfg.Client, now: cfg.Now,
		in: make(chan dialect.Event, cfg.Queue), ready: make(chan *lane, cfg.Queue*len(cfg.URLs)),
		stopped: make(chan struct{}), idle: make(chan struct{}, 1)}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.client == nil {
		s.client = newClient(cfg)
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	for _, u := range cfg.URLs {
		s.targets = append(s.targets, &target{url: u, lanes: map[laneKey]*lane{}})
	}
	s.m = newMetrics(cfg.Labels, s)
	s.wg.Add(2 + cfg.Workers)
	go s.dispatch()
	go s.logger()
	for range cfg.Workers {
		go s.work()
	}
	return s
}

func newClient(cfg Config) *http.Client {
	dialer := &net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}
	return &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           dialer.DialContext,
			MaxIdleConns:          4 * cfg.Workers,
			MaxIdleConnsPerHost:   cfg.Workers,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   cfg.Timeout,
			ResponseHeaderTimeout: cfg.Timeout,
			ForceAttemptHTTP2:     true,
		},
		// A redirect is an answer that is not 2xx: retried, never followed
		// (the body is signed for the configured URL).
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

func newMetrics(labels prometheus.Labels, s *Sender) senderMetrics {
	o := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "partyline", Subsystem: "webhook", Name: name, Help: help, ConstLabels: labels}
	}
	m := senderMetrics{
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts(o("dropped_total",
			"Webhook events dropped: full (the queue was full when emitted), expired (per URL: attempts or age exhausted), shutdown (left at the end of the shutdown drain).")), []string{"reason"}),
		delivered: prometheus.NewCounter(prometheus.CounterOpts(o("delivered_total", "Webhook deliveries acknowledged with 2xx (one per event and URL)."))),
		failed:    prometheus.NewCounter(prometheus.CounterOpts(o("failed_total", "Webhook attempts that failed (non-2xx, transport error or timeout)."))),
		retries:   prometheus.NewCounter(prometheus.CounterOpts(o("retries_total", "Webhook attempts scheduled again after a failure."))),
		delay: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: "partyline", Subsystem: "webhook", Name: "delay_seconds",
			Help: "From an event's emission to its 2xx acknowledgement, per URL.", ConstLabels: labels,
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 300}}),
		depth: prometheus.NewGaugeFunc(prometheus.GaugeOpts(o("queue_depth", "Webhook events queued or in delivery.")),
			func() float64 { return float64(s.pending.Load()) }),
	}
	for _, r := range []string{"full", "expired", "shutdown"} {
		m.dropped.WithLabelValues(r) // every reason shows, at 0
	}
	return m
}

// Collectors are the Sender's metrics, for the server's registry.
func (s *Sender) Collectors() []prometheus.Collector {
	return []prometheus.Collector{s.m.dropped, s.m.delivered, s.m.failed, s.m.retries, s.m.delay, s.m.depth}
}

// Pending is the number of events queued or in delivery.
func (s *Sender) Pending() int64 { return s.pending.Load() }

// Emit queues e for every URL; it never blocks. Any goroutine.
func (s *Sender) Emit(e dialect.Event) {
	if s.closing.Load() {
		s.drop(&s.shut, "shutdown", 1)
		return
	}
	if s.pending.Add(1) > int64(s.cfg.Queue) {
		s.pending.Add(-1)
		s.drop(&s.full, "full", 1)
		return
	}
	if e.Time == 0 {
		e.Time = s.now().UnixNano()
	}
	s.in <- e // a reserved place: the channel has room
}

func (s *Sender) drop(n *atomic.Int64, reason string, k int) {
	n.Add(int64(k))
	s.m.dropped.WithLabelValues(reason).Add(float64(k))
}

// finish marks j done for one URL; the last one frees its queue place.
func (s *Sender) finish(j *job) {
	if j.left.Add(-1) == 0 && s.pending.Add(-1) == 0 {
		select {
		case s.idle <- struct{}{}:
		default:
		}
	}
}

func (s *Sender) dispatch() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stopped:
			return
		case e := <-s.in:
			j := &job{id: newID(), at: time.Unix(0, e.Time)}
			j.body = encode(nil, j.id, s.cfg.Node, e)
			j.left.Store(int32(len(s.targets)))
			k := laneKey{e.Dialect, e.Room}
			for _, t := range s.targets {
				t.mu.Lock()
				l := t.lanes[k]
				start := l == nil
				if start {
					l = &lane{t: t, key: k}
					t.lanes[k] = l
				}
				l.q = append(l.q, j)
				t.mu.Unlock()
				if start {
					s.ready <- l // capacity: one place per lane, lanes <= events*URLs
				}
			}
		}
	}
}

func (s *Sender) work() {
	defer s.wg.Done()
	for {
		select {
		case <-s.stopped:
			return
		case l := <-s.ready:
			s.attempt(l)
		}
	}
}

// attempt posts l's head once and moves the lane on: to its next event,
// to a retry timer, or out of its target when it is empty.
func (s *Sender) attempt(l *lane) {
	l.t.mu.Lock()
	j := l.q[0]
	l.t.mu.Unlock()
	err := s.post(l.t.url, j)
	if err == nil {
		s.m.delivered.Inc()
		s.m.delay.Observe(s.now().Sub(j.at).Seconds())
		s.advance(l)
		return
	}
	if s.ctx.Err() != nil {
		return // Close gave up: the event is counted as left over there
	}
	s.m.failed.Inc()
	s.fails.Add(1)
	msg := err.Error()
	s.lastErr.Store(&msg)
	l.attempts++
	if l.attempts >= s.cfg.MaxAttempts || s.now().Sub(j.at) >= s.cfg.MaxAge {
		s.drop(&s.late, "expired", 1)
		s.advance(l)
		return
	}
	s.m.retries.Inc()
	time.AfterFunc(s.backoff(l.attempts), func() { s.ready <- l })
}

// advance drops l's head (delivered or given up) and hands the lane on.
func (s *Sender) advance(l *lane) {
	t := l.t
	t.mu.Lock()
	j := l.q[0]
	l.q[0] = nil
	l.q = l.q[1:]
	l.attempts = 0
	more := len(l.q) > 0
	if !more {
		delete(t.lanes, l.key)
	}
	t.mu.Unlock()
	s.finish(j)
	if more {
		s.ready <- l
	}
}

// backoff is the wait before attempt n+1: BackoffMin doubled per failed
// attempt, capped at BackoffMax, with "equal jitter" (half fixed, half
// random) so that lanes failing together spread out.
func (s *Sender) backoff(n int) time.Duration {
	d := s.cfg.BackoffMin
	for i := 1; i < n && d < s.cfg.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, s.cfg.BackoffMax)
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

type postError struct{ status int }

func (e postError) Error() string { return "HTTP status " + strconv.Itoa(e.status) }

func (s *Sender) post(u string, j *job) error {
	ts := strconv.FormatInt(s.now().Unix(), 10)
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, u, bytes.NewReader(j.body))
	if err != nil {
		return err
	}
	h := req.Header
	h.Set("Content-Type", "application/json")
	h.Set("User-Agent", "partyline-webhook/1")
	h.Set(HeaderEventID, j.id)
	h.Set(HeaderTimestamp, ts)
	h.Set(HeaderSignature, Sign(s.cfg.Secrets, ts, j.body))
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // keep the connection reusable
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return postError{resp.StatusCode}
	}
	return nil
}

// Sign returns the Partyline-Signature value of body sent at timestamp
// (Unix seconds, as in Partyline-Timestamp): "v1=<hex HMAC-SHA256>" per
// secret, comma-separated.
func Sign(secrets []string, timestamp string, body []byte) string {
	var b []byte
	for i, sec := range secrets {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, "v1="...)
		b = hex.AppendEncode(b, mac(sec, timestamp, body))
	}
	return string(b)
}

func mac(secret, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Tolerance is how far Verify accepts a timestamp from the receiver's clock.
const Tolerance = 5 * time.Minute

// Verify checks a delivery as a receiver should: the timestamp is within
// Tolerance of now and one v1= value of the signature header is the
// HMAC-SHA256 of "<timestamp>.<body>" with secret.
func Verify(secret, timestamp, signature string, body []byte, now time.Time) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return errors.New("webhook: bad " + HeaderTimestamp)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > Tolerance || d < -Tolerance {
		return errors.New("webhook: timestamp outside the tolerance")
	}
	want := mac(secret, timestamp, body)
	for len(signature) > 0 {
		var part string
		part, signature, _ = strings.Cut(signature, ",")
		v, ok := strings.CutPrefix(strings.TrimSpace(part), "v1=")
		if !ok {
			continue
		}
		got, err := hex.DecodeString(v)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("webhook: no valid signature")
}

// newID is 16 random bytes in hex: unique per event, stable across its
// retries.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// encode appends e as the wire's JSON object.
func encode(b []byte, id, node string, e dialect.Event) []byte {
	b = append(b, `{"id":`...)
	b = codec.AppendString(b, id)
	b = append(b, `,"type":`...)
	b = codec.AppendString(b, e.Type.String())
	b = append(b, `,"dialect":`...)
	b = codec.AppendString(b, e.Dialect)
	b = append(b, `,"room":`...)
	b = codec.AppendString(b, e.Room)
	if e.ClientID != "" {
		b = append(b, `,"clientId":`...)
		b = codec.AppendString(b, e.ClientID)
	}
	if e.Username != "" {
		b = append(b, `,"username":`...)
		b = codec.AppendString(b, e.Username)
	}
	if node != "" {
		b = append(b, `,"node":`...)
		b = codec.AppendString(b, node)
	}
	b = append(b, `,"time":"`...)
	b = time.Unix(0, e.Time).UTC().AppendFormat(b, "2006-01-02T15:04:05.000Z07:00")
	return append(b, `"}`...)
}

// logger writes, at most once per LogInterval, how many events were
// dropped and how many attempts failed since its last line.
func (s *Sender) logger() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.LogInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopped:
			s.logDrops()
			return
		case <-t.C:
			s.logDrops()
		}
	}
}

func (s *Sender) logDrops() {
	full, late, shut := s.full.Swap(0), s.late.Swap(0), s.shut.Swap(0)
	if full+late+shut > 0 {
		s.log.Warn("webhook events dropped", "queue_full", full, "expired", late, "shutdown", shut,
			"queue", s.cfg.Queue, "interval", s.cfg.LogInterval)
	}
	if n := s.fails.Swap(0); n > 0 {
		last := ""
		if p := s.lastErr.Load(); p != nil {
			last = *p
		}
		s.log.Warn("webhook deliveries failing", "failed_attempts", n, "last_error", last, "interval", s.cfg.LogInterval)
	}
}

// Close stops accepting events, waits up to timeout for the queued ones
// to be delivered (or to expire), then cancels what is in flight and
// stops the workers. It returns how many events were left undelivered.
func (s *Sender) Close(timeout time.Duration) int64 {
	if s.closing.Swap(true) {
		return 0
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for s.pending.Load() > 0 {
		select {
		case <-s.idle:
		case <-deadline.C:
			goto out
		}
	}
out:
	s.cancel()
	close(s.stopped)
	s.wg.Wait()
	left := s.pending.Load()
	if left > 0 {
		s.drop(&s.shut, "shutdown", int(left))
		s.log.Warn("webhook events left undelivered at shutdown", "events", left, "waited", timeout)
	}
	return left
}
