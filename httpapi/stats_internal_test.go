package httpapi

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// TestStatsRates steps the clock and the counters: a rate is taken over
// the time since the base sample, which moves only once it is a second old.
func TestStatsRates(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := func(name string) prometheus.Opts {
		return prometheus.Opts{Namespace: "partyline", Name: name, ConstLabels: prometheus.Labels{"node": "n1"}}
	}
	in := prometheus.NewCounter(prometheus.CounterOpts(opts("messages_in_total")))
	out := prometheus.NewCounter(prometheus.CounterOpts(opts("messages_out_total")))
	conns := prometheus.NewGauge(prometheus.GaugeOpts(opts("connections")))
	other := prometheus.NewCounter(prometheus.CounterOpts(opts("bytes_in_total")))
	reg.MustRegister(in, out, conns, other)
	other.Add(1e6)

	clock := time.Unix(1_700_000_000, 0)
	s := &statsSource{g: reg, now: func() time.Time { return clock }}
	s = newStatsSourceFrom(s)

	for i, step := range []struct {
		advance        time.Duration
		addIn, addOut  float64
		conns          float64
		rateIn, rateOu float64
		window         float64
	}{
		{2 * time.Second, 10, 40, 3, 5, 20, 2},
		{500 * time.Millisecond, 100, 0, 4, 5, 20, 2}, // too soon: the last rates again
		{500 * time.Millisecond, 0, 0, 4, 100, 0, 1},  // a second after the base
		{3 * time.Second, 30, 3, 1, 10, 1, 3},
		{0, 0, 0, 0, 10, 1, 3},
	} {
		clock = clock.Add(step.advance)
		in.Add(step.addIn)
		out.Add(step.addOut)
		conns.Set(step.conns)
		st, err := s.sample()
		if err != nil {
			t.Fatal(err)
		}
		if st.MessagesInPerSecond != step.rateIn || st.MessagesOutPerSecond != step.rateOu || st.RateWindow != step.window {
			t.Errorf("step %d: rates in %v out %v over %v s, want %v %v over %v", i, st.MessagesInPerSecond, st.MessagesOutPerSecond, st.RateWindow, step.rateIn, step.rateOu, step.window)
		}
		if st.Connections != int64(step.conns) || st.Node != "n1" || !st.Time.Equal(clock) {
			t.Errorf("step %d: %+v", i, st)
		}
	}
	if st, _ := s.sample(); st.MessagesIn != 140 || st.MessagesOut != 43 {
		t.Errorf("totals in %d out %d, want 140 and 43", st.MessagesIn, st.MessagesOut)
	}
}
