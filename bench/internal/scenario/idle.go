package scenario

import (
	"context"
	"time"

	"partyline/bench/internal/procstat"
	"partyline/bench/internal/stats"
)

// runIdle ramps to Conns connections at RampRate and holds them for
// Duration: handshake rate and latency, server memory per connection and
// the server's idle CPU.
func runIdle(ctx context.Context, cfg *Config) (*stats.Report, error) {
	r, err := newRunner(ctx, cfg, false)
	if err != nil {
		return nil, err
	}
	r.rep.Params = params(cfg)
	n := share(cfg.Conns, cfg.Procs, cfg.ProcIndex)
	if cfg.IdleRooms {
		nRooms := cfg.Conns / cfg.RoomSize
		rooms := r.buildRooms(nRooms, cfg.RoomSize, func(int) bool { return false }, false)
		if _, err := r.setupRooms(rooms); err != nil {
			return r.finish(), err
		}
		n = len(rooms) * cfg.RoomSize
		r.settle()
	} else {
		ms := make([]*member, n)
		for i := range ms {
			id := int64(i*cfg.Procs + cfg.ProcIndex)
			ms[i] = newMember(r, nil, id, 0)
		}
		t0 := time.Now()
		g0, span := procstat.SelfCPU(), startMachine()
		var s0 procstat.Sample
		if r.smp != nil {
			s0 = r.smp.Now()
		}
		cfg.logf("ramping to %d connections at %.0f/s", n, cfg.RampRate)
		r.dialAll(ms)
		timeout := time.Duration(float64(n)/cfg.RampRate*float64(time.Second)) + 30*time.Second
		if err := r.waitSetup(0, int64(n), "connect", timeout); err != nil {
			r.rep.Note("%v", err)
		}
		r.rep.RampSec = time.Since(t0).Seconds()
		// CPU during the ramp: who limited the handshake rate.
		gen := (procstat.SelfCPU() - g0).Seconds()
		srv := 0.0
		if r.smp != nil {
			s1 := r.smp.Now()
			srv = (s1.CPU - s0.CPU).Seconds()
		}
		ml := span.end(gen, srv, r.rep.RampSec)
		if r.rep.Extra == nil {
			r.rep.Extra = map[string]any{}
		}
		r.rep.Extra["ramp_gen_cores"] = gen / r.rep.RampSec
		r.rep.Extra["ramp_server_cores"] = srv / r.rep.RampSec
		r.rep.Extra["ramp_other_cores"] = ml.other
		r.rep.Extra["ramp_softirqd_cores"] = ml.softirqd
	}
	// Let the server finish its own allocations before measuring memory.
	sleepUntil(ctx, time.Now().Add(time.Second))
	r.waitStart()
	r.loaded(n)
	c := r.counts()
	cfg.logf("ramp done in %.1fs: %d open, %d dial errors, %d handshake errors",
		r.rep.RampSec, c.Opened, c.DialErrors, c.HandshakeErrors)
	cfg.logf("holding for %v", cfg.Duration)
	c0 := r.counts()
	g0 := procstat.SelfCPU()
	span := startMachine()
	var s0 procstat.Sample
	if r.smp != nil {
		s0 = r.smp.Now()
	}
	t0 := time.Now()
	sleepUntil(ctx, t0.Add(cfg.Duration))
	hold := time.Since(t0).Seconds()
	r.rep.WindowSec = hold
	r.rep.Counts = r.counts().Sub(c0)
	r.rep.Gen.CPUSec = (procstat.SelfCPU() - g0).Seconds()
	r.rep.Gen.CPUUtil = r.rep.Gen.CPUSec / hold
	if r.smp != nil {
		s1 := r.smp.Now()
		srv := r.rep.Server
		srv.WindowSec = hold
		srv.CPUSec = (s1.CPU - s0.CPU).Seconds()
		if srv.CPUSec > 0 {
			srv.SysShare = (s1.SysSec - s0.SysSec) / srv.CPUSec
		}
		srv.CPUUtil = srv.CPUSec / hold
		srv.IdleCPUUtil = srv.CPUUtil
		srv.RSSEndKiB = s1.RSS
	}
	srvCPU := 0.0
	if r.rep.Server != nil {
		srvCPU = r.rep.Server.CPUSec
	}
	r.noteMachine(span.end(r.rep.Gen.CPUSec, srvCPU, hold))
	if r.rep.Counts.Closed > 0 {
		r.rep.Note("%d connections closed during the hold", r.rep.Counts.Closed)
	}
	return r.finish(), nil
}
