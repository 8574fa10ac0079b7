// Package security owns the record of security events (refused
// handshakes, failed auth, wrong API keys, throttled joins, storage-full
// refusals...) and the keyed token-bucket limiter the defences share.
//
// Events are counted process-wide, like Go's runtime metrics: every
// server in a process (tests start several) adds to the same counters, so
// a test compares a count before and after. Each server exposes them in
// its /metrics as partyline_security_events_total{reason} through
// Collector. A cause is logged at most once per LogInterval, with the
// number of events since its last line, so an attack cannot flood the log.
//
// Concurrency: every function and method is safe from any goroutine,
// event loops included; none blocks (Record takes one short mutex only
// when a cause is first seen or its log line is due).
package security

import (
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// LogInterval is how often one cause may be logged.
const LogInterval = 10 * time.Second

type cause struct {
	n       atomic.Uint64
	logged  atomic.Uint64 // n at the last log line
	nextLog atomic.Int64  // unix nanos before which the cause stays quiet
}

var (
	causes sync.Map // string -> *cause
	logger atomic.Pointer[slog.Logger]
)

// SetLogger sets where event lines go (default slog.Default()).
func SetLogger(l *slog.Logger) { logger.Store(l) }

func get(name string) *cause {
	if c, ok := causes.Load(name); ok {
		return c.(*cause)
	}
	c, _ := causes.LoadOrStore(name, new(cause))
	return c.(*cause)
}

// Record counts one event of the given cause (a short snake_case label,
// the metric's reason) and logs it, with attrs, unless the cause was
// logged less than LogInterval ago. Causes must come from a small fixed
// set: each is a label value.
func Record(name string, attrs ...any) {
	c := get(name)
	n := c.n.Add(1)
	now := time.Now().UnixNano()
	next := c.nextLog.Load()
	if now < next || !c.nextLog.CompareAndSwap(next, now+int64(LogInterval)) {
		return
	}
	since := n - c.logged.Swap(n)
	l := logger.Load()
	if l == nil {
		l = slog.Default()
	}
	l.Warn("security event", append([]any{"reason", name, "events_since_last_line", since}, attrs...)...)
}

// Count is the number of events of a cause so far.
func Count(name string) uint64 {
	if c, ok := causes.Load(name); ok {
		return c.(*cause).n.Load()
	}
	return 0
}

// Counts returns every cause's count.
func Counts() map[string]uint64 {
	m := map[string]uint64{}
	causes.Range(func(k, v any) bool {
		m[k.(string)] = v.(*cause).n.Load()
		return true
	})
	return m
}

// Collector exposes the counts as partyline_security_events_total{reason}
// with the node label.
func Collector(node string) prometheus.Collector { return &collector{node: node} }

type collector struct{ node string }

func (c *collector) desc() *prometheus.Desc {
	return prometheus.NewDesc("partyline_security_events_total",
		"Security events (refusals, throttling, failed auth, storage-full refusals), by reason.",
		[]string{"reason"}, prometheus.Labels{"node": c.node})
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc() }

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	d := c.desc()
	m := Counts()
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(m[k]), k)
	}
}
