package rooms

// Cluster mode (--nats): a room's traffic reaches its members on every
// node through the rooms Broker; userCount in userJoined/userLeft is the
// room's size across the cluster, from the census (each node's count of
// its members in the pl_census bucket). userJoined/userLeft are therefore
// sent after the census write (a key-value round trip). A join waits (off
// the loop) until this node listens to the room (a confirmed subscription)
// and the joiner is counted, so a member never misses traffic another node
// sends after its "joined"; the session's later messages wait meanwhile.

import (
	"sync"

	"partyline/cluster"
	"partyline/dialect/internal/pending"
	"partyline/routing"
)

type clustered struct {
	n      *cluster.Node
	b      *cluster.Broker
	census *cluster.Census

	mu      sync.Mutex     // guards pending
	pending map[string]int // room -> joins in flight on this node
}

// UseCluster puts the dialect in cluster mode on node n. Call before the
// server starts.
func (d *Dialect) UseCluster(n *cluster.Node) {
	d.cl = &clustered{n: n, b: n.Broker("rooms", d.hub), census: n.Census("rooms")}
	d.cl.b.Lost = d.ErrorFrame(cluster.LostText)
	d.broker = d.cl.b
}

// clusterSession is a session's cluster-mode state (loop only).
type clusterSession struct {
	gate    pending.Gate
	joining string // the room of a join in flight ("" none)
}

// joinCluster joins room name in cluster mode: it makes sure this node
// listens to the room, counts the joiner in the census, and only then
// joins locally, replies "joined" and announces userJoined with the
// cluster-wide count, so that a member joining later anywhere never sees
// the announcement. The session's later messages wait meanwhile.
func (s *session) joinCluster(name string, m *routing.Member) {
	d, c := s.d, s.c
	s.cs.gate.Close()
	s.cs.joining = name
	d.addPending(name, 1)
	d.cl.b.Ensure(name, func(release func()) {
		d.cl.census.Mark(name, d.roomCount(name), func(_, after int) {
			c.Do(func() {
				defer release()
				s.cs.joining = ""
				d.addPending(name, -1)
				s.finishJoin(name, m, after)
				s.cs.gate.Open(s.OnMessage)
			})
		})
	})
}

func (s *session) finishJoin(name string, m *routing.Member, count int) {
	if s.rooms[name] != nil { // joined meanwhile by a held message
		s.sendJoined(name)
		return
	}
	r, _, err := s.d.hub.JoinOrCreate(name, m, nil, func(*routing.Room, []*routing.Member) { s.sendJoined(name) })
	if err != nil {
		s.fail("Cannot join room " + name + ": " + err.Error())
		return
	}
	if s.rooms == nil {
		s.rooms = map[string]*joined{}
	}
	s.rooms[r.Name] = &joined{room: r, me: m}
	f := userFrame("userJoined", r.Name, m, max(count, 1))
	s.d.cl.b.Publish(r, f, s.c, false)
	f.Release()
}

// closeCluster runs from OnClose: a join in flight no longer counts.
func (s *session) closeCluster() {
	if name := s.cs.joining; name != "" {
		s.cs.joining = ""
		s.d.addPending(name, -1)
		s.d.cl.census.Mark(name, s.d.roomCount(name), nil)
	}
}

// addPending counts joins in flight per room (they are in the census
// before they are in the local room).
func (d *Dialect) addPending(name string, delta int) {
	d.cl.mu.Lock()
	if d.cl.pending == nil {
		d.cl.pending = map[string]int{}
	}
	if d.cl.pending[name] += delta; d.cl.pending[name] <= 0 {
		delete(d.cl.pending, name)
	}
	d.cl.mu.Unlock()
}

// roomCount is the local member count of a room, joins in flight included.
func (d *Dialect) roomCount(name string) func() int {
	return func() int {
		n := 0
		if r := d.hub.Get(name); r != nil {
			n = r.Len()
		}
		d.cl.mu.Lock()
		n += d.cl.pending[name]
		d.cl.mu.Unlock()
		return n
	}
}

// announce updates the census for r after a leave and then sends
// userLeft with the cluster-wide count to the room's members.
func (d *Dialect) announce(typ string, r *routing.Room, m *routing.Member, except routing.Sender) {
	d.cl.census.Mark(r.Name, d.roomCount(r.Name), func(_, after int) {
		if after == 0 {
			return
		}
		f := userFrame(typ, r.Name, m, after)
		d.cl.b.Publish(r, f, except, false)
		f.Release()
	})
}
