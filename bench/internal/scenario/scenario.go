package scenario

import (
	"context"
	"fmt"
	"time"

	"partyline/bench/internal/procstat"
	"partyline/bench/internal/stats"
)

// Names lists the scenarios.
var Names = []string{"idle", "rooms", "direct", "bigroom", "churn", "hostile", "chat", "storm"}

// Run runs cfg.Scenario. The report is returned even with an error when
// the run got far enough to have one.
func Run(ctx context.Context, cfg *Config) (*stats.Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	switch cfg.Scenario {
	case "idle":
		return runIdle(ctx, cfg)
	case "rooms", "direct", "bigroom", "chat":
		return runRooms(ctx, cfg)
	case "churn":
		return runChurn(ctx, cfg)
	case "hostile":
		return runHostile(ctx, cfg)
	case "storm":
		return runStorm(ctx, cfg)
	}
	return nil, fmt.Errorf("unknown scenario %q (known: %v)", cfg.Scenario, Names)
}

// share returns how many of n items process idx of procs owns when they
// are dealt round robin.
func share(n, procs, idx int) int {
	s := n / procs
	if idx < n%procs {
		s++
	}
	return s
}

// buildRooms makes this process's rooms: room i of nRooms belongs to
// process i % Procs. Member ids are i*size + slot, unique across processes.
func (r *runner) buildRooms(nRooms, size int, sends func(slot int) bool, direct bool) []*room {
	var rooms []*room
	for i := r.cfg.ProcIndex; i < nRooms; i += r.cfg.Procs {
		rm := &room{idx: i, max: r.cfg.MaxClients}
		if rm.max == 0 {
			rm.max = size
		}
		if !r.d.ServerNamesRooms() { // the client names it (rooms, channels)
			name := fmt.Sprintf("%s-%d", r.cfg.RunID, i)
			rm.code.Store(&name)
		}
		for slot := range size {
			m := newMember(r, rm, int64(i)*int64(size)+int64(slot), slot)
			m.creator = slot == 0
			m.sends = sends(slot)
			m.direct = direct
			rm.members = append(rm.members, m)
		}
		rooms = append(rooms, rm)
	}
	return rooms
}

// setupRooms dials the creators, waits for their rooms, then dials and
// joins everybody else. Rooms whose creator failed are dropped.
func (r *runner) setupRooms(rooms []*room) ([]*room, error) {
	t0 := time.Now()
	creators := make([]*member, 0, len(rooms))
	for _, rm := range rooms {
		creators = append(creators, rm.members[0])
	}
	timeout := func(n int) time.Duration {
		return time.Duration(float64(n)/r.cfg.RampRate*float64(time.Second)) + 30*time.Second
	}
	base := r.setupOK.Load() + r.setupFail.Load()
	r.cfg.logf("creating %d rooms", len(creators))
	r.dialAll(creators)
	if err := r.waitSetup(base, int64(len(creators)), "create", timeout(len(creators))); err != nil {
		r.rep.Note("%v", err)
	}
	var ok []*room
	var joiners []*member
	for _, rm := range rooms {
		if rm.members[0].setup.Load() != setupDone {
			continue
		}
		ok = append(ok, rm)
		joiners = append(joiners, rm.members[1:]...)
	}
	if len(ok) == 0 {
		return nil, fmt.Errorf("no room could be created")
	}
	if len(ok) < len(rooms) {
		r.rep.Note("%d of %d rooms could not be created", len(rooms)-len(ok), len(rooms))
	}
	base = r.setupOK.Load() + r.setupFail.Load()
	r.cfg.logf("joining %d members", len(joiners))
	r.dialAll(joiners)
	if err := r.waitSetup(base, int64(len(joiners)), "join", timeout(len(joiners))); err != nil {
		r.rep.Note("%v", err)
	}
	r.rep.RampSec = time.Since(t0).Seconds()
	return ok, nil
}

// loaded samples the server after setup.
func (r *runner) loaded(conns int) {
	c := r.counts()
	r.rep.Conns = conns
	if r.rep.RampSec > 0 {
		r.rep.Rates.Handshakes = float64(c.Opened) / r.rep.RampSec
	}
	if r.smp == nil {
		return
	}
	s := r.smp.Now()
	srv := r.rep.Server
	srv.RSSLoadedKiB = s.RSS
	srv.FDs = procstat.CountFDs(r.cfg.ServerPID)
	srv.Threads = s.Thr
	if c.Opened > 0 {
		srv.RSSPerConn = float64(s.RSS-srv.RSSBaseKiB) * 1024 / float64(c.Opened)
	}
}

// settle gives the server a moment after setup (peer_joined storms).
func (r *runner) settle() {
	var last int64 = -1
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c := r.counts()
		n := c.PeerJoined + c.Joined
		if n == last {
			return
		}
		last = n
		if !sleepUntil(r.ctx, time.Now().Add(300*time.Millisecond)) {
			return
		}
	}
}

func (r *runner) waitStart() {
	if !r.cfg.StartAt.IsZero() {
		if time.Now().After(r.cfg.StartAt) {
			r.rep.Note("setup ended after --start-at by %v", time.Since(r.cfg.StartAt).Round(time.Millisecond))
		}
		sleepUntil(r.ctx, r.cfg.StartAt)
	}
}

// sendingRooms starts a runner with Conns/RoomSize rooms whose members all
// send (not yet set up).
func sendingRooms(ctx context.Context, cfg *Config) (*runner, []*room, error) {
	nRooms := cfg.Conns / cfg.RoomSize
	if nRooms == 0 {
		return nil, nil, fmt.Errorf("--conns %d is less than --room-size %d", cfg.Conns, cfg.RoomSize)
	}
	r, err := newRunner(ctx, cfg, false)
	if err != nil {
		return nil, nil, err
	}
	r.rep.Params = params(cfg)
	return r, r.buildRooms(nRooms, cfg.RoomSize, func(int) bool { return true }, false), nil
}
