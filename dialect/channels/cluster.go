package channels

// Cluster mode (--nats): a channel's connections may be on any node.
// Messages go to the channel's room subject. A user name is unique per
// channel across the cluster: a claim is a create-if-absent of the name in
// the pl_names bucket (after the local check), answered once the bucket
// has decided, off the loop; the session's later messages wait meanwhile.
// A released name (lost identity, new claim, disconnect) is deleted from
// the bucket; a dead node's names are removed by the reaper.
//
// A channel's first connection on a node subscribes to the channel
// asynchronously; since a name only authenticates after the auth delay
// (5 s by default), no message can be missed in practice.

import (
	"time"

	"partyline/cluster"
	"partyline/dialect/internal/pending"
)

type clustered struct {
	n     *cluster.Node
	b     *cluster.Broker
	names *cluster.Names
}

// UseCluster puts the dialect in cluster mode on node n. Call before the
// server starts.
func (d *Dialect) UseCluster(n *cluster.Node) {
	d.cl = &clustered{n: n, b: n.Broker("channels", d.hub), names: n.Names("channels")}
	d.cl.b.Lost = d.ErrorFrame(cluster.LostText)
	d.broker = d.cl.b
}

// clusterSession is a session's cluster-mode state (loop only).
type clusterSession struct {
	gate pending.Gate
	op   *pending.Op
	rev  uint64 // the bucket revision of the held name's claim
	want string // the name of the claim in flight (reserved locally)
}

// claimCluster claims name in the bucket (the local reservation is made);
// the answer comes back on the loop.
func (s *session) claimCluster(name string, now time.Time) {
	cl := s.d.cl
	op := &pending.Op{}
	s.cs.op, s.cs.want = op, name
	s.cs.gate.Close()
	channel, c := s.room.Name, s.c
	work := func() {
		rev, ok, err := cl.names.Claim(channel, name)
		if err != nil {
			ok = false
		}
		var undo func()
		if ok {
			undo = func() { cl.n.Cleanup(func() error { return cl.names.Release(channel, name, rev) }) }
		}
		if !op.Finish(undo) {
			if undo != nil {
				undo()
			}
			return
		}
		c.Do(func() {
			s.cs.op = nil
			s.claimed(name, ok, rev, s.d.cfg.Now())
			s.cs.gate.Open(s.OnMessage)
		})
	}
	if !cl.n.Go(work) {
		s.cs.op = nil
		s.cs.gate.Open(s.OnMessage)
		s.unreserve(name)
		s.c.Send(identityFail, false)
	}
}

// claimed finishes a claim on the loop.
func (s *session) claimed(name string, ok bool, rev uint64, now time.Time) {
	if !ok {
		s.unreserve(name)
		s.c.Send(identityFail, false)
		return
	}
	s.release()
	s.cs.rev = rev
	s.adopt(name, now)
}

// unreserve drops the local reservation of a claim that failed.
func (s *session) unreserve(name string) {
	s.ch.mu.Lock()
	if s.ch.names[name] == s {
		delete(s.ch.names, name)
	}
	s.ch.mu.Unlock()
}

// releaseCluster gives up the claim in the bucket (off the loop, on the
// node's clean-up queue: retried while NATS is unreachable).
func (s *session) releaseCluster(name string) {
	cl, channel, rev := s.d.cl, s.room.Name, s.cs.rev
	cl.n.Cleanup(func() error { return cl.names.Release(channel, name, rev) })
}

// closeCluster runs from OnClose: a claim in flight is undone.
func (s *session) closeCluster() {
	if s.cs.op == nil {
		return
	}
	if undo := s.cs.op.Cancel(); undo != nil {
		undo() // queues the release; never blocks
	}
	s.cs.op = nil
	s.unreserve(s.cs.want)
}
