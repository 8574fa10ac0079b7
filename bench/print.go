package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"partyline/bench/internal/stats"
)

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }

func ms(us float64) string { return fmt.Sprintf("%.3f", us/1e3) }

// printReport writes a human-readable summary of rep.
func printReport(w io.Writer, rep *stats.Report) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	p := func(format string, a ...any) { fmt.Fprintf(tw, format+"\n", a...) }
	label := rep.Label
	if label == "" {
		label = "-"
	}
	p("== %s\tserver %s\tdialect %s\t%s", rep.Scenario, label, rep.Dialect, rep.Date)
	if rep.Procs > 1 {
		p("processes\t%d", rep.Procs)
	}
	t := rep.Total
	p("connections\t%d\topened %d, dial errors %d, handshake errors %d, closed early %d",
		rep.Conns, t.Opened, t.DialErrors, t.HandshakeErrors, t.Closed)
	if rep.RampSec > 0 {
		p("setup\t%.1f s\t%.0f handshakes/s; rooms created %d, joins %d", rep.RampSec, rep.Rates.Handshakes, t.Created, t.Joined)
	}
	c := rep.Counts
	p("window\t%.1f s", rep.WindowSec)
	if c.Sent > 0 || c.Expected > 0 {
		p("messages\tsent %d (%.0f/s)\tdelivered %d of %d expected (%.0f/s), lost %d, extra %d, out of order %d, error replies %d",
			c.Sent, rep.Rates.Sends, c.Delivered, c.Expected, rep.Rates.Deliveries, c.Lost, c.Extra, c.Reordered, c.ErrorReplies)
	}
	if rep.Rates.Cycles > 0 {
		p("churn\t%d cycles (%.1f/s)\tpeer_joined %d, peer_left %d", c.Cycles, rep.Rates.Cycles, c.PeerJoined, c.PeerLeft)
	}
	p("latency (ms)\tn\tp50\tp90\tp99\tp99.9\tmax\tmean")
	q := func(name string, x stats.Quant) {
		if x.N > 0 {
			p("  %s\t%d\t%s\t%s\t%s\t%s\t%s\t%s", name, x.N, ms(x.P50), ms(x.P90), ms(x.P99), ms(x.P999), ms(x.Max), ms(x.Mean))
		}
	}
	q("delivery", rep.Latency)
	if rep.Completion != nil {
		q("last member", *rep.Completion)
	}
	q("send lag", rep.SendLag)
	q("handshake", rep.Handshake)
	q("  tcp connect", rep.Connect)
	q("create/join", rep.SetupLat)
	if s := rep.Server; s != nil {
		per := ""
		if s.CPUPerDeliv > 0 {
			per = fmt.Sprintf("%.3f µs/delivery, %.2f µs/send", s.CPUPerDeliv, s.CPUPerSend)
		}
		p("server pid %d\tcpu %.2f cores (%.2f s, %.0f%% in the kernel)\t%s", s.PID, s.CPUUtil, s.CPUSec, 100*s.SysShare, per)
		p("  rss\tbase %s, loaded %s (%.0f B/conn), peak %s, end %s", mib(s.RSSBaseKiB), mib(s.RSSLoadedKiB),
			s.RSSPerConn, mib(s.RSSPeakKiB), mib(s.RSSEndKiB))
		p("  fds %d, threads %d", s.FDs, s.Threads)
		if rep.Scenario == "idle" {
			p("  idle cpu\t%.2f%% of a core", 100*s.IdleCPUUtil)
		}
	}
	g := rep.Gen
	p("generator\tcpu %.2f cores (%.2f s) of %d CPU(s), %d loops, GOMAXPROCS %d, rss %s", g.CPUUtil, g.CPUSec, g.CPUs, g.Loops, g.GOMAXPROCS, mib(g.RSSPeakKiB))
	p("machine\tother processes %.2f cores, ksoftirqd %.2f cores, steal %.2f cores during the window", g.OtherCPU, g.Softirqd, g.Steal)
	if len(rep.Steps) > 0 {
		p("find-max\tmsg/s/sender\tdeliveries/s\tp50 ms\tp99 ms\tlost\tserver cores\tµs/deliv\tgen cores\tother cores\tverdict")
		for _, s := range rep.Steps {
			v := "good"
			if !s.Good {
				v = "BAD: " + s.Why
			}
			p("  \t%.4g\t%.0f\t%s\t%s\t%d\t%.2f\t%.3f\t%.2f\t%.2f\t%s", s.Rate, s.DelivPerSec, ms(s.Latency.P50), ms(s.Latency.P99),
				s.Counts.Lost, s.ServerUtil, s.CPUPerDeliv, s.GenUtil, s.OtherCPU, v)
		}
		p("  max good rate\t%.4g msg/s per sender", rep.MaxGood)
	}
	for _, k := range stats.SortedKeys(rep.Closes) {
		p("  close/error\t%s\t%d", k, rep.Closes[k])
	}
	if len(rep.KernelTCP) > 0 {
		b, _ := json.Marshal(rep.KernelTCP)
		p("kernel tcp\t%s", b)
	}
	if len(rep.Extra) > 0 {
		b, _ := json.Marshal(rep.Extra)
		p("extra\t%s", b)
	}
	for _, n := range rep.Notes {
		p("NOTE\t%s", n)
	}
}

// compareCmd prints records side by side with ratios to the first.
func compareCmd(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("compare: need at least two records")
	}
	var reps []*stats.Report
	for _, a := range args {
		r, err := readReport(a)
		if err != nil {
			return err
		}
		reps = append(reps, r)
	}
	printCompare(osStdout(), reps)
	return nil
}

type row struct {
	name   string
	get    func(*stats.Report) float64
	format string
	better string // "higher" or "lower"; "" for context rows without ratios
}

var compareRows = []row{
	{"deliveries/s", func(r *stats.Report) float64 { return r.Rates.Deliveries }, "%.0f", "higher"},
	{"max good msg/s/sender", func(r *stats.Report) float64 { return r.MaxGood }, "%.4g", "higher"},
	{"latency p50 ms", func(r *stats.Report) float64 { return r.Latency.P50 / 1e3 }, "%.3f", "lower"},
	{"latency p99 ms", func(r *stats.Report) float64 { return r.Latency.P99 / 1e3 }, "%.3f", "lower"},
	{"latency p99.9 ms", func(r *stats.Report) float64 { return r.Latency.P999 / 1e3 }, "%.3f", "lower"},
	{"latency max ms", func(r *stats.Report) float64 { return r.Latency.Max / 1e3 }, "%.3f", "lower"},
	{"lost", func(r *stats.Report) float64 { return float64(r.Counts.Lost) }, "%.0f", "lower"},
	{"server cpu µs/delivery", srv(func(s *stats.ServerReport) float64 { return s.CPUPerDeliv }), "%.3f", "lower"},
	{"server cpu cores", srv(func(s *stats.ServerReport) float64 { return s.CPUUtil }), "%.2f", "lower"},
	{"server rss loaded MiB", srv(func(s *stats.ServerReport) float64 { return float64(s.RSSLoadedKiB) / 1024 }), "%.1f", "lower"},
	{"server rss peak MiB", srv(func(s *stats.ServerReport) float64 { return float64(s.RSSPeakKiB) / 1024 }), "%.1f", "lower"},
	{"server rss B/conn", srv(func(s *stats.ServerReport) float64 { return s.RSSPerConn }), "%.0f", "lower"},
	{"handshakes/s", func(r *stats.Report) float64 { return r.Rates.Handshakes }, "%.0f", "higher"},
	{"handshake p99 ms", func(r *stats.Report) float64 { return r.Handshake.P99 / 1e3 }, "%.3f", "lower"},
	{"generator cpu cores", func(r *stats.Report) float64 { return r.Gen.CPUUtil }, "%.2f", "lower"},
	{"other processes cpu cores", func(r *stats.Report) float64 { return r.Gen.OtherCPU }, "%.2f", ""},
}

func srv(f func(*stats.ServerReport) float64) func(*stats.Report) float64 {
	return func(r *stats.Report) float64 {
		if r.Server == nil {
			return 0
		}
		return f(r.Server)
	}
}

func printCompare(w io.Writer, reps []*stats.Report) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	defer tw.Flush()
	names := make([]string, len(reps))
	for i, r := range reps {
		names[i] = r.Label
		if names[i] == "" {
			names[i] = fmt.Sprintf("#%d", i+1)
		}
	}
	base := names[0]
	hdr := "metric\t" + strings.Join(names, "\t")
	for _, n := range names[1:] {
		hdr += "\t" + n + "/" + base
	}
	fmt.Fprintf(tw, "%s\t\n", hdr)
	for _, rw := range compareRows {
		vals := make([]float64, len(reps))
		any := false
		for i, r := range reps {
			vals[i] = rw.get(r)
			any = any || vals[i] != 0
		}
		if !any {
			continue
		}
		line := rw.name
		if rw.better != "" {
			line += " (" + rw.better + ")"
		}
		for _, v := range vals {
			line += "\t" + fmt.Sprintf(rw.format, v)
		}
		for _, v := range vals[1:] {
			if vals[0] == 0 || rw.better == "" {
				line += "\t-"
			} else {
				line += fmt.Sprintf("\t%.2fx", v/vals[0])
			}
		}
		fmt.Fprintf(tw, "%s\t\n", line)
	}
	tw.Flush()
	for i, r := range reps {
		for _, n := range r.Notes {
			fmt.Fprintf(w, "note %s: %s\n", names[i], n)
		}
	}
}
