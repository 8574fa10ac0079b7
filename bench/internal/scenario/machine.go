package scenario

import (
	"time"

	"partyline/bench/internal/procstat"
)

// machineSpan measures what the rest of the machine did during a window:
// CPU used by processes other than the server and the generator, the
// hypervisor's steal and the ksoftirqd threads (deferred network work,
// part of the cost of the loopback traffic itself).
type machineSpan struct{ m0 procstat.Machine }

func startMachine() machineSpan { return machineSpan{procstat.ReadMachine()} }

// machineLoad is a span's result, in cores.
type machineLoad struct{ other, steal, softirqd float64 }

func (s machineSpan) end(genCPU, srvCPU, secs float64) machineLoad {
	m1 := procstat.ReadMachine()
	if secs <= 0 || s.m0.ReadError != nil || m1.ReadError != nil {
		return machineLoad{}
	}
	soft := (m1.Softirqd - s.m0.Softirqd).Seconds()
	busy := (m1.Busy - s.m0.Busy).Seconds()
	return machineLoad{
		other:    max(0, busy-genCPU-srvCPU-soft) / secs,
		steal:    (m1.Steal - s.m0.Steal).Seconds() / secs,
		softirqd: soft / secs,
	}
}

// noteMachine records a span's result in the report.
func (r *runner) noteMachine(l machineLoad) {
	g := &r.rep.Gen
	g.OtherCPU, g.Steal, g.Softirqd = l.other, l.steal, l.softirqd
	r.busyNote(l.other)
	if l.steal > 0.05 {
		r.rep.Note("the hypervisor stole %.2f cores during the window", l.steal)
	}
}

// waitQuiet waits, at most maxWait, until other processes have used less
// than cfg.MaxOther cores for two seconds in a row. It reports whether the
// machine got quiet.
func (r *runner) waitQuiet(maxWait time.Duration) bool {
	deadline := time.Now().Add(maxWait)
	quiet := 0
	for time.Now().Before(deadline) && r.ctx.Err() == nil {
		span, g0 := startMachine(), procstat.SelfCPU()
		var s0 procstat.Sample
		if r.smp != nil {
			s0 = r.smp.Now()
		}
		t0 := time.Now()
		sleepUntil(r.ctx, t0.Add(500*time.Millisecond))
		srv := 0.0
		if r.smp != nil {
			srv = (r.smp.Now().CPU - s0.CPU).Seconds()
		}
		l := span.end((procstat.SelfCPU() - g0).Seconds(), srv, time.Since(t0).Seconds())
		if l.other < r.cfg.MaxOther {
			if quiet++; quiet >= 4 {
				return true
			}
		} else {
			quiet = 0
		}
	}
	return false
}

// measure runs a window, repeating it (up to cfg.Retries more times, each
// after waiting for a quiet machine) when other processes used more than
// cfg.MaxOther cores during it.
func (r *runner) measure(rate float64, d time.Duration) windowResult {
	for attempt := 0; ; attempt++ {
		if r.cfg.MaxOther > 0 && !r.waitQuiet(r.quietBudget(d)) {
			r.cfg.logf("machine still busy; measuring anyway")
		}
		w := r.window(rate, d)
		if r.cfg.MaxOther <= 0 || w.machine.other <= r.cfg.MaxOther || attempt >= r.cfg.Retries || r.ctx.Err() != nil {
			if attempt > 0 {
				r.rep.Note("window at %.4g msg/s measured %d times: other processes disturbed the earlier attempts", rate, attempt+1)
			}
			return w
		}
		r.cfg.logf("other processes used %.2f cores during the window: measuring again", w.machine.other)
	}
}

// quietBudget is how long waitQuiet may take before a window of d: at
// most 30 s, and never so long that the window would not fit in the run's
// time limit.
func (r *runner) quietBudget(d time.Duration) time.Duration {
	budget := 30 * time.Second
	if dl, ok := r.ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl)-d-r.cfg.Drain-5*time.Second)
	}
	return max(0, budget)
}
