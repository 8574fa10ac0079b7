package teams

// Cluster mode (--nats): a team's connections may be on any node.
//
//   - Messages to a team go to its room subject (every node with
//     connections of the team delivers them).
//   - "Team N is not connected" is decided with the census: the team's
//     local connections, plus the other nodes' counts from the local copy
//     of the pl_census bucket (kept by a watch, so a send to a connected
//     team never leaves the loop). The copy may lag behind a registration
//     made on another node a moment ago, so before answering "not
//     connected" the node brings its copy up to the bucket's latest
//     revision (Census.Sync: one round trip and the watch's catch-up, off
//     the loop; the session's later messages wait): read-your-writes.
//     A registration is in the bucket, and its node listens to the team's
//     subject (a confirmed subscription), before its reply leaves, so once
//     a client has seen "registered", a send from any node reaches it.
//   - "Team N connected"/"disconnected" are sent by the node whose census
//     write took the team's cluster-wide count from 0 to more, or back to
//     0 (a dead node's count is removed by the reaper, which then sends
//     "disconnected"); they reach the other nodes on the "all" subject.

import (
	"sync"
	"time"

	"partyline/backplane"
	"partyline/cluster"
	"partyline/dialect/internal/pending"
	"partyline/routing"
)

const hdrTeam = "Pl-Team"

// syncWait bounds the wait for the census copy to catch up (Census.Sync).
const syncWait = 2 * time.Second

type clustered struct {
	n      *cluster.Node
	b      *cluster.Broker
	census *cluster.Census

	mu      sync.Mutex  // guards pending
	pending map[int]int // team -> registrations in flight on this node
}

// UseCluster puts the dialect in cluster mode on node n. Call before the
// server starts.
func (d *Dialect) UseCluster(n *cluster.Node) {
	cl := &clustered{n: n, b: n.Broker("teams", d.hub), census: n.Census("teams")}
	cl.b.Lost = d.ErrorFrame(cluster.LostText)
	cl.census.Watch()
	cl.census.OnReap = func(team string, before, after int) {
		if before > 0 && after == 0 {
			if t, ok := d.teamID([]byte(team)); ok {
				d.noticeCluster(t, " disconnected")
			}
		}
	}
	n.OnAll("teams", func(m backplane.Msg) {
		f := routing.NewRaw(m.Data)
		d.noticeLocal(m.Header.Get(hdrTeam), f)
		f.Release()
	})
	d.cl, d.broker = cl, cl.b
}

// teamCount is the local connection count of team, registrations in
// flight included.
func (d *Dialect) teamCount(team int) func() int {
	name := d.names[team-1]
	return func() int {
		n := 0
		if r := d.hub.Get(name); r != nil {
			n = r.Len()
		}
		d.cl.mu.Lock()
		n += d.cl.pending[team]
		d.cl.mu.Unlock()
		return n
	}
}

// markTeam records a local last-leave of team in the census and sends
// "disconnected" when the team's total fell to zero.
func (d *Dialect) markTeam(team int) {
	d.cl.census.Mark(d.names[team-1], d.teamCount(team), func(before, after int) {
		if before > 0 && after == 0 {
			d.noticeCluster(team, " disconnected")
		}
	})
}

// clusterSession is a session's cluster-mode state (loop only).
type clusterSession struct {
	gate        pending.Gate
	registering int // team of a registration in flight (0: none)
}

// registerCluster registers in cluster mode. A team's first connection on
// this node is counted in the census first (off the loop; the session's
// later messages wait), then registered; if the census write took the
// team's cluster-wide count from zero, the other teams hear "Team N
// connected" after the reply. Later connections register at once.
func (s *session) registerCluster(team int, m *routing.Member) {
	d, c := s.d, s.c
	d.cl.mu.Lock()
	local := 0
	if r := d.hub.Get(d.names[team-1]); r != nil {
		local = r.Len()
	}
	if local > 0 && d.cl.pending[team] == 0 {
		d.cl.mu.Unlock()
		s.joinTeam(team, m)
		return
	}
	leader := local == 0 && d.cl.pending[team] == 0
	if d.cl.pending == nil {
		d.cl.pending = map[int]int{}
	}
	d.cl.pending[team]++
	d.cl.mu.Unlock()
	s.cs.gate.Close()
	s.cs.registering = team
	name := d.names[team-1]
	d.cl.b.Ensure(name, func(release func()) {
		d.cl.census.Mark(name, d.teamCount(team), func(before, after int) {
			c.Do(func() {
				defer release() // the local room holds the subscription from here
				s.cs.registering = 0
				d.addPending(team, -1)
				s.joinTeam(team, m)
				if leader && before == 0 && after > 0 {
					d.noticeCluster(team, " connected")
				}
				s.cs.gate.Open(s.OnMessage)
			})
		})
	})
}

// joinTeam joins the team's local room and replies.
func (s *session) joinTeam(team int, m *routing.Member) {
	mu := &s.d.mu[team-1]
	mu.Lock()
	defer mu.Unlock()
	r, _, err := s.d.hub.JoinOrCreate(s.d.names[team-1], m, nil, func(*routing.Room, []*routing.Member) {
		s.reply("status", "Team "+s.d.names[team-1]+" registered successfully")
	})
	if err != nil { // connection ids are unique: cannot happen
		s.reply("error", "registration failed: "+err.Error())
		return
	}
	s.team, s.room, s.me = team, r, m
}

func (d *Dialect) addPending(team, delta int) {
	d.cl.mu.Lock()
	if d.cl.pending[team] += delta; d.cl.pending[team] <= 0 {
		delete(d.cl.pending, team)
	}
	d.cl.mu.Unlock()
}

// closeCluster runs from OnClose: a registration in flight no longer
// counts.
func (s *session) closeCluster() {
	if team := s.cs.registering; team != 0 {
		s.cs.registering = 0
		s.d.addPending(team, -1)
		s.d.markTeam(team)
	}
}

// noticeCluster tells every connection of the other teams, on every node,
// "Team N<what>". Any goroutine.
func (d *Dialect) noticeCluster(team int, what string) {
	own := d.names[team-1]
	f := replyFrame("status", "Team "+own+what)
	d.mu[team-1].Lock() // keeps one team's local notices in order
	d.noticeLocal(own, f)
	d.mu[team-1].Unlock()
	d.cl.n.PublishAll("teams", f, backplane.Header{hdrTeam: {own}})
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

// checkCluster finishes a send that the census copy says has nobody to
// reach: it brings the copy up to date (a worker), then, on the loop,
// publishes f to the other nodes if the team is connected there and
// answers. The session's later messages wait meanwhile.
func (s *session) checkCluster(target string, f *routing.Frame) {
	d, c := s.d, s.c
	f.Retain()
	s.cs.gate.Close()
	if !d.cl.n.Go(func() {
		if err := d.cl.census.Sync(syncWait); err != nil {
			d.cl.n.Logger().Warn("teams: census not up to date", "err", err) // answered from the copy
		}
		c.Do(func() {
			defer f.Release()
			defer s.cs.gate.Open(s.OnMessage)
			if d.cl.census.Remote(target) == 0 {
				s.reply("error", "Team "+target+" is not connected")
				return
			}
			d.cl.b.PublishRemote(target, f, false, nil)
			s.reply("status", "Message delivered to Team "+target)
		})
	}) {
		f.Release()
		s.reply("error", "Team "+target+" is not connected")
		s.cs.gate.Open(s.OnMessage)
	}
}

// deliverCluster sends f to the target team on every node; it reports
// whether the team has a connection besides the sender anywhere.
func (d *Dialect) deliverCluster(target string, f *routing.Frame, except routing.Sender) bool {
	n := 0
	if r := d.hub.Get(target); r != nil {
		n = r.Broadcast(f, except, false)
	}
	remote := d.cl.census.Remote(target)
	if remote > 0 {
		d.cl.b.PublishRemote(target, f, false, nil)
	}
	return n > 0 || remote > 0
}
