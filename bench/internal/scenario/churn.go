package scenario

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"partyline/bench/internal/procstat"
	"partyline/bench/internal/stats"
)

// runChurn keeps StableRooms rooms of StableSize members and, for
// Duration, starts Rate cycles per second of: connect, join a stable room,
// stay Dwell, leave and close with the closing handshake (or, for
// AbruptFrac of them, just drop the TCP connection).
// It reports the cycle rate, connect-to-joined latency, and whether every
// stable member saw exactly one peer_joined and one peer_left per cycle.
func runChurn(ctx context.Context, cfg *Config) (*stats.Report, error) {
	if cfg.StableRooms < 1 || cfg.StableSize < 1 {
		cfg.StableRooms, cfg.StableSize = 100, 5
	}
	cfg.MaxClients = -1 // churners come on top of the stable members
	r, err := newRunner(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	r.rep.Params = params(cfg)
	rooms := r.buildRooms(cfg.StableRooms, cfg.StableSize, func(int) bool { return false }, false)
	if rooms, err = r.setupRooms(rooms); err != nil {
		return r.finish(), err
	}
	r.settle()
	r.waitStart()
	r.loaded(len(rooms) * cfg.StableSize)

	ch := &churner{r: r, rooms: rooms, sem: make(chan struct{}, cfg.DialConc)}
	r.onLoops(func(ls *loopState) { ls.rec.Setup.Reset(); ls.rec.Join.Reset() })
	c0 := r.counts()
	g0 := procstat.SelfCPU()
	span := startMachine()
	var s0 procstat.Sample
	if r.smp != nil {
		s0 = r.smp.Now()
	}
	t0 := time.Now()
	cfg.logf("churning %.0f cycles/s for %v (dwell %v)", cfg.Rate, cfg.Duration, cfg.Dwell)
	ch.run(t0, cfg.Duration)
	sendSec := time.Since(t0).Seconds()
	// Drain: wait for the last cycles to finish and their peer events.
	deadline := time.Now().Add(cfg.Dwell + cfg.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if ch.inFlight.Load() == 0 && ch.expectationsMet(c0) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ch.wg.Wait()
	total := time.Since(t0).Seconds()
	c := r.counts().Sub(c0)
	rep := r.rep
	rep.WindowSec = sendSec
	rep.Counts = c
	rep.Rates.Cycles = float64(c.Cycles) / sendSec
	rep.Gen.CPUSec = (procstat.SelfCPU() - g0).Seconds()
	rep.Gen.CPUUtil = rep.Gen.CPUSec / total
	joins, leaves := ch.joins.Load(), ch.leaves.Load()
	wantJ, wantL := joins*int64(cfg.StableSize), leaves*int64(cfg.StableSize)
	rep.Extra = map[string]any{
		"cycles_started": ch.started.Load(), "churn_joins": joins, "churn_leaves": leaves,
		"churn_failures":       ch.failed.Load(),
		"peer_joined_expected": wantJ, "peer_joined_got": c.PeerJoined,
		"peer_left_expected": wantL, "peer_left_got": c.PeerLeft,
		"stable_members_closed": c.Closed,
	}
	if c.PeerJoined != wantJ || c.PeerLeft != wantL {
		rep.Note("stable members saw peer_joined %d/%d, peer_left %d/%d", c.PeerJoined, wantJ, c.PeerLeft, wantL)
	}
	h := newHdrHist()
	r.onLoops(func(ls *loopState) { h.Merge(ls.rec.Setup) })
	rep.SetupLat = stats.Quantiles(h)
	hj := newHdrHist()
	r.onLoops(func(ls *loopState) { hj.Merge(ls.rec.Join) })
	rep.Extra["join_to_joined"] = stats.Quantiles(hj)
	if r.smp != nil {
		s1 := r.smp.Now()
		srv := rep.Server
		srv.WindowSec = total
		srv.CPUSec = (s1.CPU - s0.CPU).Seconds()
		if srv.CPUSec > 0 {
			srv.SysShare = (s1.SysSec - s0.SysSec) / srv.CPUSec
		}
		srv.CPUUtil = srv.CPUSec / total
		srv.RSSEndKiB = s1.RSS
		rep.Extra["server_fds_end"] = procstat.CountFDs(cfg.ServerPID)
		rep.Extra["server_rss_growth_kib"] = s1.RSS - srv.RSSLoadedKiB
	}
	srvCPU := 0.0
	if rep.Server != nil {
		srvCPU = rep.Server.CPUSec
	}
	r.noteMachine(span.end(rep.Gen.CPUSec, srvCPU, total))
	r.genBoundNote(rep.Gen.CPUUtil, stats.Quant{})
	fin := r.finish()
	fin.SetupLat = rep.SetupLat // finish merges setup of the whole run; keep the churn one
	return fin, nil
}

type churner struct {
	r     *runner
	rooms []*room
	sem   chan struct{}
	wg    sync.WaitGroup

	started, joins, leaves, failed, inFlight atomic.Int64
}

func (ch *churner) expectationsMet(c0 stats.Counts) bool {
	c := ch.r.counts().Sub(c0)
	size := int64(ch.r.cfg.StableSize)
	return c.PeerJoined >= ch.joins.Load()*size && c.PeerLeft >= ch.leaves.Load()*size
}

// run starts cycles at the configured rate until d has passed.
func (ch *churner) run(t0 time.Time, d time.Duration) {
	cfg := ch.r.cfg
	for k := 0; ; k++ {
		at := t0.Add(time.Duration(float64(k) / cfg.Rate * 1e9))
		if at.Sub(t0) >= d || !sleepUntil(ch.r.ctx, at) {
			return
		}
		ch.sem <- struct{}{}
		ch.wg.Add(1)
		ch.inFlight.Add(1)
		ch.started.Add(1)
		id := int64(1)<<40 + int64(k*cfg.Procs+cfg.ProcIndex)
		rm := ch.rooms[k%len(ch.rooms)]
		abrupt := cfg.AbruptFrac > 0 && float64(k%1000) < cfg.AbruptFrac*1000
		go ch.cycle(newMember(ch.r, rm, id, len(rm.members)), abrupt)
	}
}

// cycle dials one churner; the rest of its life runs on its loop.
func (ch *churner) cycle(m *member, abrupt bool) {
	defer func() { <-ch.sem }()
	m.churn = true
	done := func() { ch.inFlight.Add(-1); ch.wg.Done() }
	var once sync.Once
	m.onClose = func(*member) { once.Do(done) }
	m.onSetup = func(m *member, ok bool) {
		if !ok {
			ch.failed.Add(1)
			// A refused join (an error reply) ends the cycle: close, so
			// that the drain does not wait for it.
			go func() {
				_ = m.c.Loop().Run(func() {
					if m.c.Live() {
						m.leaving = true
						m.c.CloseGraceful(1000, time.Second)
					}
				})
			}()
			return
		}
		ch.joins.Add(1)
		time.AfterFunc(ch.r.cfg.Dwell, func() { ch.leave(m, abrupt) })
	}
	if err := ch.r.eng.Dial(ch.r.ctx, &m.c); err != nil {
		ch.r.dialError(err)
		ch.r.setupFail.Add(-1) // dialError counts a setup failure; churn counts its own
		ch.failed.Add(1)
		once.Do(done)
	}
}

// leave ends a churner's stay: leave then close, or close at once.
func (ch *churner) leave(m *member, abrupt bool) {
	err := m.c.Loop().Run(func() {
		if !m.c.Live() {
			return
		}
		ls := m.ls()
		if m.inRoom {
			ch.leaves.Add(1)
			m.inRoom = false
			m.room.live.Add(-1)
		}
		if !abrupt {
			ls.out = m.r.d.AppendLeave(ls.out[:0], m.room.name())
			_ = m.c.WriteText(ls.out)
		}
		ls.rec.C.Cycles.Add(1)
		m.leaving = true
		if abrupt {
			m.c.Close(0) // a dropped client: no leave, no close frame
		} else {
			m.c.CloseGraceful(1000, time.Second)
		}
	})
	if err != nil {
		m.onClose(m)
	}
}
