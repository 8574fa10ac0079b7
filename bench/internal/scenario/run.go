package scenario

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"partyline/bench/internal/dialect"
	"partyline/bench/internal/procstat"
	"partyline/bench/internal/stats"
	"partyline/bench/internal/wsc"
)

// runner is the state shared by one run's scenario code, the event loops
// and the dialers.
type runner struct {
	cfg   *Config
	d     dialect.Dialect
	eng   *wsc.Engine
	ctx   context.Context
	rep   *stats.Report
	smp   *procstat.Sampler // nil without --server-pid
	track bool              // per-message completion tracking

	stopping  atomic.Bool  // the run is ending: closes are expected
	setupOK   atomic.Int64 // members whose setup step succeeded
	setupFail atomic.Int64 // members whose setup step failed
	deflated  atomic.Int64 // connections that negotiated permessage-deflate (--compression)
	c0        stats.Counters

	mu       sync.Mutex // guards the following
	loops    []*loopState
	dialErrs map[string]int64
	errTexts map[string]int64 // error replies by text (first 64 bytes)
	tcp0     map[string]int64 // kernel TCP counters at the start

	chatUsers []*member // chat: every user by id (read-only once set up)
}

// loopState is one event loop's share of the run. Fields are touched on
// the loop only, except pending.
type loopState struct {
	r        *runner
	l        *wsc.Loop
	rec      *stats.Recorder
	senders  []*member
	sched    schedule
	out      []byte // message scratch
	data     []byte // data value scratch
	shuffled bool   // senders are in random order
	pending  atomic.Bool
}

func newRunner(ctx context.Context, cfg *Config, track bool) (*runner, error) {
	r := &runner{cfg: cfg, d: cfg.Dialect, ctx: ctx, track: track,
		dialErrs: map[string]int64{}, errTexts: map[string]int64{}, tcp0: procstat.TCPCounters()}
	loops := cfg.Loops
	if loops <= 0 {
		loops = runtime.GOMAXPROCS(0)
	}
	var src []net.IP
	for i := range cfg.SrcIPs {
		src = append(src, net.IPv4(127, 0, byte((i+2)/256), byte((i+2)%256)))
	}
	eng, err := wsc.New(wsc.Config{Addr: cfg.Addr, Loops: loops, NewLoop: r.newLoop, SourceIPs: src, Deflate: cfg.Compression})
	if err != nil {
		return nil, err
	}
	r.eng = eng
	r.rep = &stats.Report{
		Scenario: cfg.Scenario, Label: cfg.Label, Dialect: r.d.Name(),
		Date: time.Now().UTC().Format(time.RFC3339), Procs: cfg.Procs, ProcIndex: cfg.ProcIndex,
	}
	r.rep.Gen.Loops = loops
	r.rep.Gen.GOMAXPROCS = runtime.GOMAXPROCS(0)
	r.rep.Gen.CPUs = runtime.NumCPU()
	if cfg.ServerPID > 0 {
		if _, err := procstat.Read(cfg.ServerPID); err != nil {
			eng.Stop()
			return nil, fmt.Errorf("server pid %d: %w", cfg.ServerPID, err)
		}
		r.smp = procstat.Start(cfg.ServerPID, 500*time.Millisecond)
		r.rep.Server = &stats.ServerReport{PID: cfg.ServerPID}
		base := r.smp.Now()
		r.rep.Server.RSSBaseKiB = base.RSS
	}
	return r, nil
}

func (r *runner) newLoop(l *wsc.Loop) {
	ls := &loopState{r: r, l: l, rec: stats.NewRecorder(r.track)}
	if r.cfg.SeriesEvery > 0 {
		ls.rec.Series, ls.rec.SeriesEvery = new([][2]int64), r.cfg.SeriesEvery
	}
	l.User = ls
	r.mu.Lock()
	r.loops = append(r.loops, ls)
	r.mu.Unlock()
}

func (r *runner) loopStates() []*loopState {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*loopState(nil), r.loops...)
}

// counts sums the counters of every loop and the dialers.
func (r *runner) counts() stats.Counts {
	c := r.c0.Snapshot()
	for _, ls := range r.loopStates() {
		c = c.Add(ls.rec.C.Snapshot())
	}
	return c.Settled()
}

// onLoops runs fn on every loop and waits.
func (r *runner) onLoops(fn func(ls *loopState)) {
	for _, ls := range r.loopStates() {
		_ = ls.l.Do(func() { fn(ls) })
	}
}

func (r *runner) dialError(err error) {
	r.c0.DialErrors.Add(1)
	r.setupFail.Add(1)
	msg := err.Error()
	var ne interface{ Timeout() bool }
	if errors.As(err, &ne) && ne.Timeout() {
		msg = "dial timeout"
	}
	r.mu.Lock()
	r.dialErrs[msg]++
	r.mu.Unlock()
}

func (r *runner) errorReply(text []byte) {
	if len(text) > 64 {
		text = text[:64]
	}
	r.mu.Lock()
	if len(r.errTexts) < 32 {
		r.errTexts[string(text)]++
	}
	r.mu.Unlock()
}

// dialAll dials the members' connections at the ramp rate with bounded
// concurrency. It returns when every dial returned (handshakes complete
// later, on the loops).
func (r *runner) dialAll(ms []*member) {
	sem := make(chan struct{}, r.cfg.DialConc)
	start := time.Now()
	var wg sync.WaitGroup
	for i, m := range ms {
		at := start.Add(time.Duration(float64(i) / r.cfg.RampRate * 1e9))
		if !sleepUntil(r.ctx, at) {
			r.setupFail.Add(int64(len(ms) - i))
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := r.eng.Dial(r.ctx, &m.c); err != nil {
				m.setupFailed()
				r.dialError(err)
			}
		}()
	}
	wg.Wait()
}

// waitSetup waits until n more members (counting from the given base) have
// finished or failed their setup step, or until timeout.
func (r *runner) waitSetup(base int64, n int64, what string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	last := time.Now()
	for {
		ok, fail := r.setupOK.Load(), r.setupFail.Load()
		if ok+fail-base >= n {
			if fail > 0 {
				return fmt.Errorf("%s: %d of %d failed", what, fail, n)
			}
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: timed out with %d/%d done, %d failed", what, ok+fail-base-fail, n, fail)
		}
		if r.ctx.Err() != nil {
			return r.ctx.Err()
		}
		if time.Since(last) >= time.Second {
			last = time.Now()
			c := r.counts()
			r.cfg.logf("%s: %d/%d (opened %d, failed %d)", what, ok+fail-base, n, c.Opened, fail)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-tm.C:
		return true
	}
}

// finish fills the parts of the report every scenario shares and stops
// the engine.
func (r *runner) finish() *stats.Report {
	r.stopping.Store(true)
	rep := r.rep
	rep.Total = r.counts()
	hs, conn := stats.NewHist(), stats.NewHist()
	setup := stats.NewHist()
	closes := map[string]int64{}
	r.onLoops(func(ls *loopState) {
		hs.Merge(ls.rec.Handshake)
		conn.Merge(ls.rec.Connect)
		setup.Merge(ls.rec.Setup)
		for k, v := range ls.rec.Closes {
			closes[k] += v
		}
	})
	rep.Handshake = stats.Quantiles(hs)
	rep.Connect = stats.Quantiles(conn)
	rep.SetupLat = stats.Quantiles(setup)
	if rep.Hists == nil {
		rep.Hists = map[string]string{}
	}
	rep.Hists["handshake"] = stats.Encode(hs)
	rep.Hists["tcp_connect"] = stats.Encode(conn)
	rep.Hists["setup"] = stats.Encode(setup)
	r.mu.Lock()
	for k, v := range r.dialErrs {
		closes["dial: "+k] += v
	}
	for k, v := range r.errTexts {
		closes["error reply: "+k] += v
	}
	r.mu.Unlock()
	if len(closes) > 0 {
		rep.Closes = closes
	}
	if d := procstat.TCPDelta(r.tcp0, procstat.TCPCounters()); len(d) > 0 {
		rep.KernelTCP = d
	}
	_ = r.eng.Stop()
	if r.smp != nil {
		samples, peak, err := r.smp.Stop()
		rep.Server.Samples = samples
		rep.Server.RSSPeakKiB = peak
		if err != nil {
			rep.Note("server sampling: %v", err)
		}
	}
	rep.Gen.RSSPeakKiB = procstat.PeakRSS(0)
	if r.cfg.Compression {
		if rep.Extra == nil {
			rep.Extra = map[string]any{}
		}
		rep.Extra["deflate_conns"] = r.deflated.Load()
		if r.deflated.Load() == 0 {
			rep.Note("--compression: no connection negotiated permessage-deflate (is the server running with --compression?)")
		}
	}
	sort.Strings(rep.Notes)
	return rep
}
