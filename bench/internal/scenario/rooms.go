package scenario

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"partyline/bench/internal/stats"
)

// runRooms runs rooms (broadcast in rooms of RoomSize), direct (each send
// goes to one random member) and bigroom (one room, Senders senders, Rate
// messages/s for the whole room, per-message completion times).
func runRooms(ctx context.Context, cfg *Config) (*stats.Report, error) {
	big := cfg.Scenario == "bigroom"
	if big {
		cfg.RoomSize = cfg.Conns
		if cfg.Procs > 1 {
			return nil, fmt.Errorf("bigroom needs a single generator process")
		}
		if cfg.Senders <= 0 {
			cfg.Senders = 10
		}
		cfg.Senders = min(cfg.Senders, cfg.RoomSize)
	}
	if cfg.Scenario == "direct" && cfg.Dialect.Name() != "party" {
		return nil, fmt.Errorf("direct needs the party dialect (%s has no direct messages)", cfg.Dialect.Name())
	}
	if cfg.Scenario == "direct" && cfg.RoomSize < 2 {
		return nil, fmt.Errorf("direct needs rooms of at least 2")
	}
	nRooms := cfg.Conns / cfg.RoomSize
	if nRooms == 0 {
		return nil, fmt.Errorf("--conns %d is less than --room-size %d", cfg.Conns, cfg.RoomSize)
	}
	r, err := newRunner(ctx, cfg, big)
	if err != nil {
		return nil, err
	}
	rate := cfg.Rate
	sends := func(int) bool { return true }
	if big {
		rate = cfg.Rate / float64(cfg.Senders)
		sends = func(slot int) bool { return slot < cfg.Senders }
	}
	rooms := r.buildRooms(nRooms, cfg.RoomSize, sends, cfg.Scenario == "direct")
	if cfg.Scenario == "chat" {
		if err := chatValidate(cfg); err != nil {
			return nil, err
		}
		r.chatUsers = make([]*member, nRooms*cfg.RoomSize)
		r.initChat(rooms)
	}
	r.rep.Params = params(cfg)
	if nRooms*cfg.RoomSize != cfg.Conns {
		r.rep.Note("--conns %d rounded down to %d rooms of %d", cfg.Conns, nRooms, cfg.RoomSize)
	}
	rooms, err = r.setupRooms(rooms)
	if err != nil {
		return r.finish(), err
	}
	r.settle()
	r.waitStart()
	r.loaded(len(rooms) * cfg.RoomSize)
	c := r.counts()
	cfg.logf("set up: %d rooms, %d members in rooms, %d failed", len(rooms), c.Created+c.Joined, r.setupFail.Load())
	if cfg.Warmup > 0 {
		cfg.logf("warmup %v at %.3g msg/s per sender", cfg.Warmup, rate)
		r.window(rate, cfg.Warmup)
	}
	if cfg.FindMax {
		r.findMax(rate)
	} else {
		cfg.logf("measuring %v at %.3g msg/s per sender", cfg.Duration, rate)
		w := r.measure(rate, cfg.Duration)
		r.applyWindow(w)
		if big {
			r.completion(w)
		}
		cfg.logf("window done: %s", oneLine(r.rep))
	}
	rep := r.finish()
	if cfg.Scenario == "chat" {
		rep.Extra["unacked_total"] = rep.Total.Sent - rep.Total.Acked
	}
	return rep, nil
}

// findMax raises the rate step by step until a step loses a message, has
// a p99 over the limit or saturates the generator. The report's main
// figures are those of the last good step.
func (r *runner) findMax(rate float64) {
	cfg := r.cfg
	var good *windowResult
	var first windowResult
	for i := 0; i < cfg.MaxSteps && r.ctx.Err() == nil; i++ {
		w := r.measure(rate, cfg.StepDur)
		st := r.step(w)
		st.Good, st.Why = r.judge(st)
		r.rep.Steps = append(r.rep.Steps, st)
		cfg.logf("step %d: %.4g msg/s/sender: %.0f deliveries/s p99 %.2f ms lost %d server %.0f%% gen %.0f%% other %.0f%% -> %v %s",
			i+1, rate, st.DelivPerSec, st.Latency.P99/1e3, st.Counts.Lost, 100*st.ServerUtil, 100*st.GenUtil, 100*st.OtherCPU, st.Good, st.Why)
		if i == 0 {
			first = w
		}
		if !st.Good {
			break
		}
		good = &w
		r.rep.MaxGood = rate
		rate *= cfg.RateMult
		sleepUntil(r.ctx, time.Now().Add(500*time.Millisecond))
	}
	if good == nil {
		r.rep.Note("find-max: even the first rate failed")
		good = &first
	}
	r.applyWindow(*good)
}

// judge decides whether a find-max step passed.
func (r *runner) judge(st stats.Step) (bool, string) {
	switch {
	case st.Counts.Lost > 0:
		return false, fmt.Sprintf("lost %d of %d", st.Counts.Lost, st.Counts.Expected)
	case st.Latency.P99 > float64(r.cfg.MaxP99.Microseconds()):
		return false, fmt.Sprintf("p99 %.1f ms > %v", st.Latency.P99/1e3, r.cfg.MaxP99)
	case st.Counts.Closed > 0:
		return false, fmt.Sprintf("%d connections closed", st.Counts.Closed)
	case st.GenUtil > 0.9*float64(runtime.NumCPU()):
		return false, fmt.Sprintf("generator-bound (%.0f%% CPU)", 100*st.GenUtil)
	case st.SendLag.P99 > 10000:
		return false, fmt.Sprintf("generator-bound (send lag p99 %.1f ms)", st.SendLag.P99/1e3)
	}
	return true, ""
}

// completion reports, per message, the time until its last receiver had it.
func (r *runner) completion(w windowResult) {
	h := newHdrHist()
	incomplete := 0
	for _, a := range w.msgs {
		if a.Want <= 0 {
			continue // sent by another process, or before the window
		}
		if a.N < a.Want {
			incomplete++
			continue
		}
		stats.Record(h, a.Last-a.Sent)
	}
	q := stats.Quantiles(h)
	r.rep.Completion = &q
	r.rep.Hists["completion"] = stats.Encode(h)
	if incomplete > 0 {
		r.rep.Note("%d messages did not reach every member", incomplete)
	}
}

func oneLine(rep *stats.Report) string {
	s := fmt.Sprintf("sent %d delivered %d/%d (%.0f/s) p50 %.2f ms p99 %.2f ms",
		rep.Counts.Sent, rep.Counts.Delivered, rep.Counts.Expected, rep.Rates.Deliveries,
		rep.Latency.P50/1e3, rep.Latency.P99/1e3)
	if rep.Server != nil {
		s += fmt.Sprintf(" server %.2f µs/delivery", rep.Server.CPUPerDeliv)
	}
	return s
}

// params records the effective configuration in the report.
func params(cfg *Config) map[string]any {
	p := map[string]any{
		"addr": cfg.Addr, "addrs": cfg.Addrs, "conns": cfg.Conns, "room_size": cfg.RoomSize, "rate": cfg.Rate,
		"size_min": cfg.SizeMin, "size_max": cfg.SizeMax, "ramp": cfg.RampRate,
		"duration_s": cfg.Duration.Seconds(), "warmup_s": cfg.Warmup.Seconds(),
		"drain_s": cfg.Drain.Seconds(), "loops": cfg.Loops, "run_id": cfg.RunID,
	}
	switch cfg.Scenario {
	case "bigroom":
		p["senders"] = cfg.Senders
	case "churn":
		p["stable_rooms"], p["stable_size"], p["dwell_s"], p["abrupt_frac"] =
			cfg.StableRooms, cfg.StableSize, cfg.Dwell.Seconds(), cfg.AbruptFrac
	case "hostile":
		p["slow_frac"], p["dribblers"], p["oversize"], p["flooders"], p["flood_rate"], p["flood_in_rooms"] =
			cfg.SlowFrac, cfg.Dribblers, cfg.Oversize, cfg.Flooders, cfg.FloodRate, cfg.FloodInRooms
	case "idle":
		p["idle_rooms"] = cfg.IdleRooms
	}
	if cfg.FindMax {
		p["find_max"], p["rate_mult"], p["step_s"], p["max_steps"], p["max_p99_ms"] =
			true, cfg.RateMult, cfg.StepDur.Seconds(), cfg.MaxSteps, cfg.MaxP99.Seconds()*1e3
	}
	return p
}
