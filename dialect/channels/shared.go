package channels

// What the channels share with other nodes, through the backplane
// (package backplane): one code path, two implementations. On a single
// node (backplane.Local) every channel's connections are here and the
// names are a map in memory; in a cluster (NATS) a channel's connections
// may be on any node:
//
//   - Messages go to the channel's room on every node (Bus.Publish).
//   - A user name is unique per channel on every node: a claim (after the
//     local check) is a create-if-absent of the name in the backplane's
//     names, made on a worker and answered on the loop; the session's
//     later messages wait meanwhile (on one node the names are in memory:
//     the claim is made and answered at once, backplane.Blocking). A released
//     name (lost identity, new claim, disconnect) is released in the names
//     on the clean-up queue; in a cluster a dead node's names are removed
//     by the reaper.
//
// In a cluster a channel's first connection on a node subscribes to the
// channel asynchronously; since a name only authenticates after the auth
// delay (5 s by default), no message can be missed in practice.

import (
	"partyline/backplane"
	"partyline/dialect/internal/pending"
)

// UseBackplane shares the channels through bp (New starts with a
// single-node one). Call before the server starts.
func (d *Dialect) UseBackplane(bp backplane.Node) {
	d.bp, d.bus, d.names = bp, bp.Bus("channels", d.hub), bp.Names("channels")
	d.bus.SetLost(d.ErrorFrame(backplane.LostText))
}

// claim claims name (reserved locally) in the backplane's names on a
// worker (at once on one node); the answer comes back on the loop.
func (s *session) claim(name string) {
	d, c := s.d, s.c
	op := &pending.Op{}
	s.op, s.want = op, name
	s.gate.Close()
	channel := s.room.Name
	started := false
	// On one node the claim is answered before Blocking returns, and the
	// session goes on in this loop turn.
	pending.OnLoop(c.Do, func(then func(func())) {
		started = backplane.Blocking(d.bp, func() {
			rev, ok, err := d.names.Claim(channel, name)
			if err != nil {
				ok = false
			}
			var undo func()
			if ok {
				undo = func() { d.unclaim(channel, name, rev) }
			}
			if !op.Finish(undo) {
				if undo != nil {
					undo()
				}
				return
			}
			then(func() {
				s.op = nil
				s.claimed(name, ok, rev)
				s.gate.Open(s.OnMessage)
			})
		})
	})
	if !started {
		s.op = nil
		s.gate.Open(s.OnMessage)
		s.unreserve(name)
		s.c.Send(identityFail, false)
	}
}

// claimed finishes a claim on the loop.
func (s *session) claimed(name string, ok bool, rev uint64) {
	if !ok {
		s.unreserve(name)
		s.c.Send(identityFail, false)
		return
	}
	s.release()
	s.rev = rev
	s.adopt(name, s.d.cfg.Now())
}

// unreserve drops the local reservation of a claim that failed.
func (s *session) unreserve(name string) {
	s.ch.mu.Lock()
	if s.ch.names[name] == s {
		delete(s.ch.names, name)
	}
	s.ch.mu.Unlock()
}

// unclaim gives up the claim of name in channel made at rev (on the
// clean-up queue: in a cluster, retried while NATS is unreachable; on one
// node, done when it returns).
func (d *Dialect) unclaim(channel, name string, rev uint64) {
	d.bp.Cleanup(func() error { return d.names.Release(channel, name, rev) })
}

// cancel runs from OnClose: a claim in flight is undone.
func (s *session) cancel() {
	if s.op == nil {
		return
	}
	if undo := s.op.Cancel(); undo != nil {
		undo() // queues the release; never blocks
	}
	s.op = nil
	s.unreserve(s.want)
}
