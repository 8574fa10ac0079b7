package scenario

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"partyline/bench/internal/stats"
)

// runStorm measures a join storm into one big room and what it does to
// everybody else. Conns members in rooms of RoomSize send Rate msg/s each
// (the unrelated clients); after the warmup a window of Duration starts
// and, at its start, StormJoins clients join one room at StormRate joins/s
// (the first creates it with maxClients = StormJoins), while ProbeRate
// clients/s connect, create a room of their own and leave (unrelated
// handshakes). The protocol announces every join to every member already
// there, so the storm costs StormJoins*(StormJoins-1)/2 peer_joined frames.
//
// Reported: the time from the storm's first dial until every announcement
// was delivered, the storm members' dial-to-joined latency, the probes'
// dial-to-created latency (SetupLat) and the small rooms' message latency
// over the window (Latency): both during the storm.
func runStorm(ctx context.Context, cfg *Config) (*stats.Report, error) {
	if cfg.Procs > 1 {
		return nil, fmt.Errorf("storm needs a single generator process")
	}
	if cfg.StormJoins < 2 || cfg.StormRate <= 0 {
		return nil, fmt.Errorf("storm needs --storm-joins >= 2 and --storm-rate > 0")
	}
	if !cfg.Dialect.ServerNamesRooms() {
		return nil, fmt.Errorf("storm needs a dialect whose server names rooms (party, party-v2)")
	}
	r, rooms, err := sendingRooms(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if rooms, err = r.setupRooms(rooms); err != nil {
		return r.finish(), err
	}
	r.settle()
	r.loaded(len(rooms) * cfg.RoomSize)
	if cfg.Warmup > 0 {
		cfg.logf("warmup %v at %.3g msg/s per sender", cfg.Warmup, cfg.Rate)
		r.window(cfg.Rate, cfg.Warmup)
	}

	st := newStorm(r)
	r.onLoops(func(ls *loopState) { ls.rec.Setup.Reset() })
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); st.run() }()
	go func() { defer wg.Done(); st.probe() }()
	cfg.logf("storm: %d joins at %.0f/s, probes at %.0f/s, window %v", cfg.StormJoins, cfg.StormRate, cfg.ProbeRate, cfg.Duration)
	w := r.window(cfg.Rate, cfg.Duration)
	st.stopProbes.Store(true)
	r.applyWindow(w)
	// The announcements may outlast the window: wait for them (bounded).
	deadline := time.Now().Add(cfg.Drain + 30*time.Second)
	for !st.done() && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	wg.Wait()
	st.report(r.rep)
	probes := newHdrHist()
	r.onLoops(func(ls *loopState) { probes.Merge(ls.rec.Setup) })
	r.rep.SetupLat = stats.Quantiles(probes)
	r.rep.Hists["probe_setup"] = stats.Encode(probes)
	cfg.logf("window done: %s", oneLine(r.rep))
	fin := r.finish()
	fin.SetupLat = r.rep.SetupLat // finish merges setup of the whole run; keep the probes'
	return fin, nil
}

// storm is the state of one join storm. Its counters are touched by the
// generator's loops (atomics) and the storm goroutines.
type storm struct {
	r    *runner
	room *room

	start      time.Time
	joined     atomic.Int64 // storm members that got joined/created
	failed     atomic.Int64
	announced  atomic.Int64 // peer_joined frames the storm members received
	lastAnn    atomic.Int64 // Unix ns of the latest one
	lastJoined atomic.Int64 // Unix ns of the latest joined

	mu      sync.Mutex
	joinLat *hdrHist // dial to joined, storm members

	probes, probeFails atomic.Int64
	stopProbes         atomic.Bool
	probeWG            sync.WaitGroup
}

func newStorm(r *runner) *storm {
	n := r.cfg.StormJoins
	rm := &room{idx: -1, max: n}
	st := &storm{r: r, room: rm, joinLat: newHdrHist()}
	base := int64(1) << 41 // ids apart from the small rooms' and the probes'
	for slot := range n {
		m := newMember(r, rm, base+int64(slot), slot)
		m.creator = slot == 0
		m.storm = st
		m.onSetup = func(_ *member, ok bool) {
			if !ok {
				st.failed.Add(1)
			}
		}
		rm.members = append(rm.members, m)
	}
	return st
}

// entered records a storm member's arrival. Its loop.
func (st *storm) entered(m *member, now int64) {
	st.mu.Lock()
	stats.Record(st.joinLat, now-m.c.DialAt)
	st.mu.Unlock()
	st.joined.Add(1)
	st.lastJoined.Store(now)
}

// announce counts one peer_joined received by a storm member. Its loop.
func (st *storm) announce(now int64) {
	st.announced.Add(1)
	st.lastAnn.Store(now)
}

// want is the number of announcements the joins so far owe: each pair of
// members is announced once, to the one that was there first.
func (st *storm) want() int64 {
	j := st.joined.Load()
	return j * (j - 1) / 2
}

// done: every storm member joined or failed, and every announcement owed
// arrived.
func (st *storm) done() bool {
	n := int64(st.r.cfg.StormJoins)
	return st.joined.Load()+st.failed.Load() >= n && st.announced.Load() >= st.want()
}

// run creates the storm room and then dials its members at StormRate.
func (st *storm) run() {
	r := st.r
	st.start = time.Now()
	ms := st.room.members
	if err := r.eng.Dial(r.ctx, &ms[0].c); err != nil {
		r.dialError(err)
		st.failed.Add(int64(len(ms)))
		return
	}
	for st.room.name() == "" { // joiners need the code
		if st.failed.Load() > 0 || r.ctx.Err() != nil || time.Since(st.start) > 10*time.Second {
			st.failed.Store(int64(len(ms)))
			return
		}
		time.Sleep(time.Millisecond)
	}
	sem := make(chan struct{}, r.cfg.DialConc)
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, m := range ms[1:] {
		if !sleepUntil(r.ctx, t0.Add(time.Duration(float64(i)/r.cfg.StormRate*1e9))) {
			st.failed.Add(int64(len(ms) - 1 - i))
			break
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			m.c.Path = r.d.Path(st.room.name())
			if err := r.eng.Dial(r.ctx, &m.c); err != nil {
				r.dialError(err)
				m.setupFailed()
			}
		}()
	}
	wg.Wait()
}

// probe runs unrelated clients until stopProbes: each connects, creates a
// room of its own and closes once it is in. Their dial-to-created latency
// lands in the loops' Setup histograms.
func (st *storm) probe() {
	r := st.r
	if r.cfg.ProbeRate <= 0 {
		return
	}
	sem := make(chan struct{}, r.cfg.DialConc)
	t0 := time.Now()
	base := int64(1) << 42
	for k := 0; !st.stopProbes.Load(); k++ {
		if !sleepUntil(r.ctx, t0.Add(time.Duration(float64(k)/r.cfg.ProbeRate*1e9))) {
			break
		}
		sem <- struct{}{}
		st.probeWG.Add(1)
		st.probes.Add(1)
		rm := &room{idx: -1, max: 2}
		m := newMember(r, rm, base+int64(k), 0)
		m.creator, m.churn = true, true
		var once sync.Once
		done := func() { once.Do(func() { <-sem; st.probeWG.Done() }) }
		m.onClose = func(*member) { done() }
		m.onSetup = func(m *member, ok bool) {
			if !ok {
				st.probeFails.Add(1)
				return
			}
			m.leaving = true
			m.c.CloseGraceful(1000, time.Second)
		}
		go func() {
			if err := r.eng.Dial(r.ctx, &m.c); err != nil {
				r.dialError(err)
				st.probeFails.Add(1)
				done()
			}
		}()
	}
	st.probeWG.Wait()
}

// report puts the storm's figures in rep.Extra.
func (st *storm) report(rep *stats.Report) {
	if rep.Extra == nil {
		rep.Extra = map[string]any{}
	}
	want, got := st.want(), st.announced.Load()
	e := rep.Extra
	e["storm_joins"], e["storm_failed"] = st.joined.Load(), st.failed.Load()
	e["storm_peer_joined_expected"], e["storm_peer_joined_got"] = want, got
	if last := st.lastJoined.Load(); last > 0 {
		e["storm_join_span_s"] = float64(last-st.start.UnixNano()) / 1e9
	}
	if got >= want && st.lastAnn.Load() > 0 {
		e["storm_announced_s"] = float64(st.lastAnn.Load()-st.start.UnixNano()) / 1e9
	} else {
		rep.Note("storm: %d of %d peer_joined delivered", got, want)
	}
	st.mu.Lock()
	e["storm_join_latency"] = stats.Quantiles(st.joinLat)
	st.mu.Unlock()
	e["probes"], e["probe_failures"] = st.probes.Load(), st.probeFails.Load()
	if f := st.failed.Load(); f > 0 {
		rep.Note("storm: %d of %d joins failed", f, st.r.cfg.StormJoins)
	}
}
