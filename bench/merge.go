package main

import (
	"flag"
	"fmt"
	"os"

	"partyline/bench/internal/stats"
)

func mergeCmd(args []string) error {
	fs := flag.NewFlagSet("merge", flag.ContinueOnError)
	out := fs.String("out", "", "write the merged record here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("merge: no records")
	}
	var reps []*stats.Report
	for _, p := range fs.Args() {
		r, err := readReport(p)
		if err != nil {
			return err
		}
		reps = append(reps, r)
	}
	m := mergeReports(reps)
	printReport(os.Stdout, m)
	if *out != "" {
		return writeJSON(*out, m)
	}
	return nil
}

// mergeReports combines the records of processes that shared one run:
// counts and rates add up, histograms merge exactly, the server figures
// come from the first record that sampled the server and are divided by
// the combined deliveries.
func mergeReports(reps []*stats.Report) *stats.Report {
	if len(reps) == 1 {
		return reps[0]
	}
	m := *reps[0]
	m.Counts, m.Total, m.Rates, m.Conns = stats.Counts{}, stats.Counts{}, stats.Rates{}, 0
	m.Gen, m.Notes, m.Closes, m.Extra, m.Steps = stats.GenReport{}, nil, map[string]int64{}, map[string]any{}, nil
	m.Hists = map[string]string{}
	hists := map[string]*hdrHist{}
	pids := map[int][]*stats.ServerReport{}
	for i, r := range reps {
		m.Counts = m.Counts.Add(r.Counts)
		m.Total = m.Total.Add(r.Total)
		m.Conns += r.Conns
		m.Rates.Sends += r.Rates.Sends
		m.Rates.Deliveries += r.Rates.Deliveries
		m.Rates.Handshakes += r.Rates.Handshakes
		m.Rates.Cycles += r.Rates.Cycles
		m.RampSec = max(m.RampSec, r.RampSec)
		m.WindowSec = max(m.WindowSec, r.WindowSec)
		m.Gen.Loops += r.Gen.Loops
		m.Gen.GOMAXPROCS += r.Gen.GOMAXPROCS
		m.Gen.CPUSec += r.Gen.CPUSec
		m.Gen.CPUUtil += r.Gen.CPUUtil
		m.Gen.RSSPeakKiB += r.Gen.RSSPeakKiB
		m.Gen.CPUs += r.Gen.CPUs
		for k, v := range r.Closes {
			m.Closes[k] += v
		}
		if r.Extra != nil {
			m.Extra[fmt.Sprintf("proc%d", r.ProcIndex)] = r.Extra
		}
		for _, n := range r.Notes {
			m.Notes = append(m.Notes, fmt.Sprintf("[proc %d] %s", r.ProcIndex, n))
		}
		for k, s := range r.Hists {
			h, err := stats.Decode(s)
			if err != nil {
				m.Notes = append(m.Notes, fmt.Sprintf("[proc %d] histogram %s: %v", i, k, err))
				continue
			}
			if hists[k] == nil {
				hists[k] = stats.NewHist()
			}
			hists[k].Merge(h)
		}
		if r.Server != nil {
			pids[r.Server.PID] = append(pids[r.Server.PID], r.Server)
		}
		if m.Server == nil && r.Server != nil {
			m.Server = r.Server
		}
	}
	// Processes that sampled different servers (the nodes of a cluster):
	// the servers' CPU and memory add up.
	if len(pids) > 1 {
		var sum stats.ServerReport
		for _, ss := range pids {
			s := ss[0]
			sum.CPUSec += s.CPUSec
			sum.CPUUtil += s.CPUUtil
			sum.RSSBaseKiB += s.RSSBaseKiB
			sum.RSSLoadedKiB += s.RSSLoadedKiB
			sum.RSSPeakKiB += s.RSSPeakKiB
			sum.RSSEndKiB += s.RSSEndKiB
			sum.WindowSec = max(sum.WindowSec, s.WindowSec)
			sum.SysShare += s.SysShare * s.CPUSec
		}
		if sum.CPUSec > 0 {
			sum.SysShare /= sum.CPUSec
		}
		m.Server = &sum
		m.Note("server figures are the sum of %d servers (the processes sampled different pids)", len(pids))
	}
	m.ProcIndex = -1
	// Each process counted the others among "other processes": take that
	// out, then average.
	var other float64
	for _, r := range reps {
		other += max(0, r.Gen.OtherCPU-(m.Gen.CPUUtil-r.Gen.CPUUtil))
	}
	m.Gen.OtherCPU = other / float64(len(reps))
	for k, h := range hists {
		m.Hists[k] = stats.Encode(h)
	}
	m.Latency = stats.Quantiles(hists["latency"])
	m.SendLag = stats.Quantiles(hists["send_lag"])
	m.Handshake = stats.Quantiles(hists["handshake"])
	m.Connect = stats.Quantiles(hists["tcp_connect"])
	m.SetupLat = stats.Quantiles(hists["setup"])
	if h := hists["completion"]; h != nil {
		q := stats.Quantiles(h)
		m.Completion = &q
	}
	if s := m.Server; s != nil {
		srv := *s
		srv.CPUPerDeliv, srv.CPUPerSend, srv.RSSPerConn = 0, 0, 0
		if m.Counts.Delivered > 0 {
			srv.CPUPerDeliv = srv.CPUSec * 1e6 / float64(m.Counts.Delivered)
		}
		if m.Counts.Sent > 0 {
			srv.CPUPerSend = srv.CPUSec * 1e6 / float64(m.Counts.Sent)
		}
		if m.Total.Opened > 0 && srv.RSSLoadedKiB > 0 {
			srv.RSSPerConn = float64(srv.RSSLoadedKiB-srv.RSSBaseKiB) * 1024 / float64(m.Total.Opened)
		}
		m.Server = &srv
	}
	return &m
}
