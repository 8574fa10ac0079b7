package scenario

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"time"

	"partyline/bench/internal/procstat"
	"partyline/bench/internal/stats"
)

// schedule spreads one loop's senders evenly over the send period: sender
// i of round k is due at start + k*period + (i*period)/n + offset. Sends
// are scheduled by the clock, never by replies (open loop); a loop that
// falls behind sends everything due at once and the lag is recorded.
type schedule struct {
	on     bool
	period int64 // ns between two sends of one sender
	start  int64
	offset int64
	round  int64
	pos    int
	n      int
}

func (s *schedule) next() int64 {
	return s.start + s.offset + s.round*s.period + int64(s.pos)*s.period/int64(s.n)
}

// tick sends everything due by now. Event loop only.
func (ls *loopState) tick() {
	s := &ls.sched
	if !s.on || s.n == 0 {
		return
	}
	now := time.Now().UnixNano()
	for budget := 4 * s.n; budget > 0; budget-- {
		at := s.next()
		if at > now {
			return
		}
		ls.senders[s.pos].send(ls, at, now)
		now = time.Now().UnixNano()
		if s.pos++; s.pos == s.n {
			s.pos = 0
			s.round++
		}
	}
}

// shuffleSenders puts the loop's senders in a random order (the same for
// every run: the seed is fixed). Members enter the list room by room; sent
// in that order, consecutive messages would go to the same room and a
// server could batch them far better than independent clients allow.
// Event loop only.
func (ls *loopState) shuffleSenders() {
	if ls.shuffled {
		return
	}
	ls.shuffled = true
	rng := rand.New(rand.NewPCG(uint64(ls.l.Index())+1, 0x9e3779b97f4a7c15))
	rng.Shuffle(len(ls.senders), func(i, j int) { ls.senders[i], ls.senders[j] = ls.senders[j], ls.senders[i] })
}

// tickEvery is the scheduler's resolution.
const tickEvery = time.Millisecond

// sending is a running schedule on every loop.
type sending struct {
	r    *runner
	stop chan struct{}
	wg   sync.WaitGroup
}

// startSending starts every loop's schedule at rate messages/s per sender.
func (r *runner) startSending(rate float64) *sending {
	s := &sending{r: r, stop: make(chan struct{})}
	loops := r.loopStates()
	period := int64(1e9 / rate)
	start := time.Now().Add(5 * time.Millisecond).UnixNano()
	for i, ls := range loops {
		_ = ls.l.Do(func() {
			ls.shuffleSenders()
			n := len(ls.senders)
			off := period * int64(i) / int64(len(loops)) / int64(max(1, n))
			ls.sched = schedule{on: true, period: period, start: start, offset: off, n: n}
		})
		s.wg.Add(1)
		go s.ticker(ls)
	}
	return s
}

func (s *sending) ticker(ls *loopState) {
	defer s.wg.Done()
	t := time.NewTicker(tickEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		if ls.pending.CompareAndSwap(false, true) {
			_ = ls.l.Run(func() {
				ls.pending.Store(false)
				ls.tick()
			})
		}
	}
}

// halt stops the schedules; no message is sent after it returns.
func (s *sending) halt() {
	close(s.stop)
	s.wg.Wait()
	s.r.onLoops(func(ls *loopState) { ls.sched.on = false })
}

// windowResult is what one measurement window produced.
type windowResult struct {
	rate      float64
	sendSec   float64 // how long messages were sent
	totalSec  float64 // sending plus drain
	counts    stats.Counts
	lat, lag  *hdrHist
	ack       *hdrHist // chat: acknowledgement latency
	msgs      map[uint64]*stats.MsgAgg
	series    [][2]int64 // sampled (receive time, latency), when configured
	start     int64      // window start, Unix ns
	srvCPU    float64    // server CPU seconds over the window and drain
	srvSys    float64    // of which system (kernel) time
	srvEnd    procstat.Sample
	genCPU    float64
	machine   machineLoad
	drained   bool
	completed bool
}

// window sends at rate for d, stops, waits for the in-flight deliveries
// (up to the drain time) and returns the window's measurements.
func (r *runner) window(rate float64, d time.Duration) windowResult {
	res := windowResult{rate: rate}
	r.onLoops(func(ls *loopState) { ls.rec.ResetWindow() })
	c0 := r.counts()
	var s0 procstat.Sample
	if r.smp != nil {
		s0 = r.smp.Now()
	}
	g0 := procstat.SelfCPU()
	span := startMachine()
	t0 := time.Now()
	res.start = t0.UnixNano()
	snd := r.startSending(rate)
	sleepUntil(r.ctx, t0.Add(d))
	snd.halt()
	res.sendSec = time.Since(t0).Seconds()
	if res.sendSec < 0.95*d.Seconds() {
		r.rep.Note("a %v window was cut short after %.1fs (--timeout or interrupt)", d, res.sendSec)
	}
	// Drain: wait until every expected delivery arrived, or the drain time.
	deadline := time.Now().Add(r.cfg.Drain)
	for {
		c := r.counts().Sub(c0)
		if c.Delivered >= c.Expected && (r.cfg.Scenario != "chat" || c.Acked >= c.Sent) {
			res.drained = true
			break
		}
		if time.Now().After(deadline) || r.ctx.Err() != nil {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	res.totalSec = max(time.Since(t0).Seconds(), 1e-3)
	res.genCPU = (procstat.SelfCPU() - g0).Seconds()
	if r.smp != nil {
		res.srvEnd = r.smp.Now()
		res.srvCPU = (res.srvEnd.CPU - s0.CPU).Seconds()
		res.srvSys = res.srvEnd.SysSec - s0.SysSec
	}
	res.machine = span.end(res.genCPU, res.srvCPU, res.totalSec)
	res.counts = r.counts().Sub(c0)
	res.lat, res.lag, res.ack = newHdrHist(), newHdrHist(), newHdrHist()
	if r.track {
		res.msgs = map[uint64]*stats.MsgAgg{}
	}
	r.onLoops(func(ls *loopState) {
		res.lat.Merge(ls.rec.Lat)
		res.lag.Merge(ls.rec.Lag)
		res.ack.Merge(ls.rec.Ack)
		if ls.rec.Series != nil {
			res.series = append(res.series, *ls.rec.Series...)
		}
		for k, a := range ls.rec.Msgs {
			b := res.msgs[k]
			if b == nil {
				b = &stats.MsgAgg{Sent: a.Sent}
				res.msgs[k] = b
			}
			b.Want += a.Want
			b.N += a.N
			b.Last = max(b.Last, a.Last)
		}
	})
	return res
}

// step turns a window into a find-max step (or the main window's figures).
func (r *runner) step(w windowResult) stats.Step {
	st := stats.Step{
		Rate: w.rate, WindowSec: w.sendSec, Counts: w.counts,
		Latency: stats.Quantiles(w.lat), SendLag: stats.Quantiles(w.lag),
		ServerCPU: w.srvCPU, GenUtil: w.genCPU / w.totalSec, OtherCPU: w.machine.other,
		LatHist: stats.Encode(w.lat), LagHist: stats.Encode(w.lag),
	}
	if w.sendSec > 0 {
		st.DelivPerSec = float64(w.counts.Delivered) / w.sendSec
	}
	if w.totalSec > 0 {
		st.ServerUtil = w.srvCPU / w.totalSec
	}
	if w.counts.Delivered > 0 {
		st.CPUPerDeliv = w.srvCPU * 1e6 / float64(w.counts.Delivered)
	}
	return st
}

// applyWindow fills the report's main figures from a window.
func (r *runner) applyWindow(w windowResult) {
	if r.cfg.SeriesFile != "" {
		if err := writeSeries(r.cfg.SeriesFile, w); err != nil {
			r.rep.Note("series: %v", err)
		}
	}
	rep := r.rep
	rep.WindowSec = w.sendSec
	rep.Counts = w.counts
	rep.Latency = stats.Quantiles(w.lat)
	rep.SendLag = stats.Quantiles(w.lag)
	if rep.Hists == nil {
		rep.Hists = map[string]string{}
	}
	rep.Hists["latency"] = stats.Encode(w.lat)
	rep.Hists["send_lag"] = stats.Encode(w.lag)
	if r.cfg.Scenario == "chat" {
		rep.Hists["ack"] = stats.Encode(w.ack)
		if rep.Extra == nil {
			rep.Extra = map[string]any{}
		}
		rep.Extra["ack_latency"] = stats.Quantiles(w.ack)
		rep.Extra["acked"] = w.counts.Acked
		if w.sendSec > 0 {
			rep.Extra["acked_per_sec"] = float64(w.counts.Acked) / w.sendSec
		}
	}
	if w.sendSec > 0 {
		rep.Rates.Sends = float64(w.counts.Sent) / w.sendSec
		rep.Rates.Deliveries = float64(w.counts.Delivered) / w.sendSec
	}
	rep.Gen.CPUSec = w.genCPU
	rep.Gen.CPUUtil = w.genCPU / w.totalSec
	if srv := rep.Server; srv != nil {
		srv.WindowSec = w.totalSec
		srv.CPUSec = w.srvCPU
		srv.CPUUtil = w.srvCPU / w.totalSec
		if w.srvCPU > 0 {
			srv.SysShare = w.srvSys / w.srvCPU
		}
		if w.counts.Delivered > 0 {
			srv.CPUPerDeliv = w.srvCPU * 1e6 / float64(w.counts.Delivered)
		}
		if w.counts.Sent > 0 {
			srv.CPUPerSend = w.srvCPU * 1e6 / float64(w.counts.Sent)
		}
		srv.RSSEndKiB = w.srvEnd.RSS
	}
	if !w.drained {
		rep.Note("drain: %d of %d expected deliveries missing after %v", w.counts.Lost, w.counts.Expected, r.cfg.Drain)
	}
	if w.counts.Reordered > 0 {
		rep.Note("%d deliveries arrived out of per-sender order", w.counts.Reordered)
	}
	r.genBoundNote(rep.Gen.CPUUtil, rep.SendLag)
	r.noteMachine(w.machine)
}

// busyNote warns when other processes used the CPUs during a window.
func (r *runner) busyNote(other float64) {
	if other > 0.1 {
		r.rep.Note("other processes used %.2f cores during the window: the machine was not quiet", other)
	}
}

// genBoundNote warns when the generator itself was the bottleneck.
func (r *runner) genBoundNote(util float64, lag stats.Quant) {
	cores := float64(runtime.NumCPU())
	if util > 0.85*cores {
		r.rep.Note("generator CPU %.0f%% of its %v core(s): results may be generator-bound", 100*util/cores, cores)
	}
	if lag.P99 > 5000 {
		r.rep.Note("generator sent late: send lag p99 %.1f ms", lag.P99/1e3)
	}
}
