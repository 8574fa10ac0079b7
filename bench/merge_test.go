package main

import (
	"testing"

	"partyline/bench/internal/stats"
)

func TestMergeReports(t *testing.T) {
	all := stats.NewHist()
	var reps []*stats.Report
	for p := range 3 {
		h := stats.NewHist()
		for v := range 1000 {
			x := int64((p+1)*1000 + v*37)
			stats.Record(h, x)
			stats.Record(all, x)
		}
		c := stats.Counts{Sent: 10, Expected: 190, Delivered: 190 - int64(p)}
		reps = append(reps, &stats.Report{
			Scenario: "rooms", ProcIndex: p, Procs: 3, Conns: 100,
			Counts: c.Settled(), Rates: stats.Rates{Deliveries: 1000},
			Hists:  map[string]string{"latency": stats.Encode(h)},
			Server: &stats.ServerReport{CPUSec: 2, RSSBaseKiB: 1000, RSSLoadedKiB: 4000},
			Total:  stats.Counts{Opened: 100},
		})
	}
	m := mergeReports(reps)
	if m.Conns != 300 || m.Counts.Sent != 30 || m.Counts.Lost != 3 || m.Rates.Deliveries != 3000 {
		t.Fatalf("merged: conns %d counts %+v rates %+v", m.Conns, m.Counts, m.Rates)
	}
	if want := stats.Quantiles(all); m.Latency != want {
		t.Fatalf("latency %+v, want %+v", m.Latency, want)
	}
	if got, want := m.Server.CPUPerDeliv, 2e6/float64(m.Counts.Delivered); got != want {
		t.Fatalf("cpu per delivery %v, want %v", got, want)
	}
	if got, want := m.Server.RSSPerConn, 3000.0*1024/300; got != want {
		t.Fatalf("rss per conn %v, want %v", got, want)
	}
}
