package security

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRecordCountsAndCollects(t *testing.T) {
	before := Count("test_cause")
	for range 5 {
		Record("test_cause", "addr", "127.0.0.1")
	}
	if got := Count("test_cause") - before; got != 5 {
		t.Fatalf("count grew by %d, want 5", got)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(Collector("n1"))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "reason" && lp.GetValue() == "test_cause" {
					found = m.GetCounter().GetValue() == float64(Count("test_cause"))
				}
			}
		}
	}
	if !found {
		t.Fatal("partyline_security_events_total{reason=test_cause} missing or wrong")
	}
}

func TestLimiterCrossesTheLimit(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(1, 3, 0) // 1/s, burst 3
	for i := range 3 {
		if !l.AllowN("a", 1, now) {
			t.Fatalf("token %d refused within the burst", i)
		}
	}
	if l.AllowN("a", 1, now) {
		t.Fatal("4th token at once was allowed")
	}
	if !l.AllowN("b", 1, now) {
		t.Fatal("another key was limited")
	}
	if d := l.RetryAfter("a", now); d <= 0 || d > time.Second {
		t.Fatalf("RetryAfter = %v", d)
	}
	if !l.AllowN("a", 1, now.Add(time.Second)) {
		t.Fatal("no token after a second")
	}
	if l.AllowN("a", 0, now.Add(time.Second)) {
		t.Fatal("peek saw a token that was spent")
	}
}

func TestLimiterBoundedKeys(t *testing.T) {
	l := NewLimiter(1, 1, 100)
	now := time.Unix(0, 0)
	for i := range 1000 {
		l.AllowN(fmt.Sprint(i), 1, now)
	}
	if n := l.Len(); n > 100 {
		t.Fatalf("holds %d keys, cap 100", n)
	}
}

func TestLimiterOff(t *testing.T) {
	var l *Limiter
	if !l.Allow("x") || !NewLimiter(0, 1, 0).Allow("x") {
		t.Fatal("an off limiter refused")
	}
}
