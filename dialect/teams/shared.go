package teams

// What the teams share with other nodes, through the backplane (package
// backplane): one code path, two implementations. On a single node
// (backplane.Local) every team's connections are here: the census holds
// this process's counts, and its callbacks run before the call returns.
// In a cluster (NATS) a team's connections may be on any node:
//
//   - Messages to a team reach its local connections and, if the census
//     counts the team on other nodes, its room subject (every node with
//     connections of the team delivers them).
//   - "Team N is not connected" is decided with the census: the team's
//     local connections, plus the other nodes' counts from the local copy
//     of the census (kept by a watch, so a send to a connected team never
//     leaves the loop). The copy may lag behind a registration made on
//     another node a moment ago, so before answering "not connected" the
//     node brings its copy up to date (Census.Sync, on a worker; the
//     session's later messages wait) and tries again: read-your-writes.
//     On one node Sync has nothing to wait for: the answer comes at once. A registration is counted in the census, and its node
//     hears the team's room (Bus.Ensure), before its reply leaves, so once
//     a client has seen "registered", a send from any node reaches it.
//   - "Team N connected"/"disconnected" are sent by the node whose census
//     write took the team's count on every node from 0 to more, or back
//     to 0 (a dead node's count is removed by the reaper, which then sends
//     "disconnected"); they reach the other nodes with PublishAll.

import (
	"sync"
	"sync/atomic"
	"time"

	"partyline/backplane"
	"partyline/dialect/internal/pending"
	"partyline/routing"
)

const hdrTeam = "Pl-Team"

// syncWait bounds the wait for the census copy to catch up (Census.Sync).
const syncWait = 2 * time.Second

// team is one team's state on this node.
type team struct {
	name string // the team's room name: "1", "2", ...

	// mu orders the team's membership changes on this node with the
	// census marks they cause (every Mark of the team is made under it, so
	// the census sees the changes in order). No backplane callback takes
	// it: on one node they run inside Mark.
	mu      sync.Mutex
	pending int          // registrations in flight on this node (mu)
	local   atomic.Int64 // connections here, pending ones included: the census count

	// nmu orders the notices about the team; census callbacks take it.
	nmu  sync.Mutex
	owed bool // a census write of this node took the team from 0; "connected" not sent yet
}

func (t *team) count() int { return int(t.local.Load()) }

// UseBackplane shares the teams through bp (New starts with a single-node
// one). Call before the server starts.
func (d *Dialect) UseBackplane(bp backplane.Node) {
	d.bp, d.bus, d.census = bp, bp.Bus("teams", d.hub), bp.Census("teams")
	d.bus.SetLost(d.ErrorFrame(backplane.LostText))
	d.census.Watch()
	d.census.SetOnReap(func(team string, before, after int) {
		if t, ok := d.teamID([]byte(team)); ok {
			d.marked(t, before, after)
		}
	})
	bp.OnAll("teams", func(m backplane.Msg) {
		f := routing.NewRaw(m.Data)
		d.noticeLocal(m.Header.Get(hdrTeam), f)
		f.Release()
	})
}

// join registers the session as a member of team. A team's first
// connection on this node, or one that arrives while another registration
// is in flight, is counted in the census and makes the node hear the team
// first; the reply (and "Team N connected" to the other teams, if the
// census write took the team's count from zero) follows on the loop, and
// the session's later messages wait. Later connections join at once.
func (s *session) join(team int, m *routing.Member) {
	d, c, t := s.d, s.c, &s.d.teams[team-1]
	t.mu.Lock()
	if t.pending == 0 && t.local.Load() > 0 { // counted and heard already
		if s.enter(team, m) {
			t.local.Add(1)
		}
		t.mu.Unlock()
		return
	}
	first := t.local.Load() == 0
	t.pending++
	t.local.Add(1)
	s.gate.Close()
	s.registering = team
	var (
		left    atomic.Int32 // of the census write and the subscription
		release func()       // the subscription's, until the room holds it
	)
	left.Store(2)
	complete := func() {
		defer release()
		s.registering = 0
		t.mu.Lock()
		t.pending--
		if !s.enter(team, m) {
			d.drop(team)
		}
		t.mu.Unlock()
		t.nmu.Lock()
		if t.owed {
			t.owed = false
			d.notice(team, " connected")
		}
		t.nmu.Unlock()
		s.gate.Open(s.OnMessage)
	}
	// On one node both callbacks run inside the calls: the registration
	// completes in this loop turn, once the team's mu is released.
	pending.OnLoop(c.Do, func(then func(func())) {
		finish := func() {
			if left.Add(-1) == 0 {
				then(complete)
			}
		}
		d.bus.Ensure(t.name, func(rel func()) {
			release = rel
			finish()
		})
		d.census.Mark(t.name, t.count, func(before, after int) {
			if first && before == 0 && after > 0 {
				t.nmu.Lock()
				t.owed = true
				t.nmu.Unlock()
			}
			finish()
		})
		t.mu.Unlock()
	})
}

// enter joins the team's local room and replies; false if it could not.
// The caller holds the team's mu.
func (s *session) enter(team int, m *routing.Member) bool {
	name := s.d.teams[team-1].name
	r, _, err := s.d.hub.JoinOrCreate(name, m, nil, func(*routing.Room, []*routing.Member) {
		s.reply("status", "Team "+name+" registered successfully")
	})
	if err != nil { // connection ids are unique: cannot happen
		s.reply("error", "registration failed: "+err.Error())
		return false
	}
	s.team, s.room, s.me = team, r, m
	return true
}

// leave takes the session off its team, or its registration in flight.
func (s *session) leave() {
	if team := s.registering; team != 0 {
		s.registering = 0
		t := &s.d.teams[team-1]
		t.mu.Lock()
		t.pending--
		s.d.drop(team)
		t.mu.Unlock()
	}
	if s.team == 0 {
		return
	}
	t := &s.d.teams[s.team-1]
	t.mu.Lock()
	if removed, _ := s.room.Leave(s.me); removed {
		s.d.drop(s.team)
	}
	t.mu.Unlock()
	s.team, s.room, s.me = 0, nil, nil
}

// drop takes a connection (or a registration in flight) off the team's
// local count; the last one is recorded in the census. The caller holds
// the team's mu.
func (d *Dialect) drop(team int) {
	t := &d.teams[team-1]
	if t.local.Add(-1) > 0 {
		return
	}
	d.census.Mark(t.name, t.count, func(before, after int) { d.marked(team, before, after) })
}

// marked sends "Team N disconnected" after a census change that took the
// team's count on every node to zero (preceded by the "connected" still
// owed, if the registration that brought it up never finished).
func (d *Dialect) marked(team, before, after int) {
	if before == 0 || after > 0 {
		return
	}
	t := &d.teams[team-1]
	t.nmu.Lock()
	if t.owed {
		t.owed = false
		d.notice(team, " connected")
	}
	d.notice(team, " disconnected")
	t.nmu.Unlock()
}

// notice tells every connection of the other teams, on every node, "Team
// N<what>". The caller holds the team's nmu.
func (d *Dialect) notice(team int, what string) {
	own := d.teams[team-1].name
	f := replyFrame("status", "Team "+own+what)
	d.noticeLocal(own, f)
	d.bp.PublishAll("teams", f, backplane.Header{hdrTeam: {own}})
	f.Release()
}

// noticeLocal sends f to the local connections of every team but own.
func (d *Dialect) noticeLocal(own string, f *routing.Frame) {
	d.hub.Range(func(r *routing.Room) bool {
		if r.Name != own {
			r.Broadcast(f, nil, false)
		}
		return true
	})
}

// deliver sends f to the target team's connections but except, here and,
// if the census counts the team elsewhere, on the other nodes; it reports
// whether the team has a connection besides except anywhere.
func (d *Dialect) deliver(target string, f *routing.Frame, except routing.Sender) bool {
	n := 0
	if r := d.hub.Get(target); r != nil {
		n = r.Broadcast(f, except, false)
	}
	remote := d.census.Remote(target)
	if remote > 0 {
		d.bus.PublishRemote(target, f, false, nil)
	}
	return n > 0 || remote > 0
}

// check finishes a send that found nobody to reach: it brings the census
// copy up to date (a worker), then, on the loop, delivers f if the team is
// connected by now and answers. The session's later messages wait.
func (s *session) check(target string, f *routing.Frame) {
	d, c := s.d, s.c
	f.Retain()
	s.gate.Close()
	busy := false
	pending.OnLoop(c.Do, func(then func(func())) {
		busy = !backplane.AfterSync(d.bp, d.census, syncWait, func(err error) {
			if err != nil {
				d.bp.Logger().Warn("teams: census not up to date", "err", err) // answered from the copy
			}
			then(func() {
				s.answer(target, d.deliver(target, f, c))
				f.Release()
				s.gate.Open(s.OnMessage)
			})
		})
	})
	if busy {
		f.Release()
		s.answer(target, false)
		s.gate.Open(s.OnMessage)
	}
}
