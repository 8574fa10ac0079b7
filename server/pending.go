package server

import (
	"context"
	"math"

	"partyline/internal/security"
)

// Pending handshakes. A socket that has not finished its handshake holds
// a descriptor but has shown nothing yet, so such sockets get a budget of
// their own, --max-pending-handshakes, and when it is full the oldest
// pending socket is dropped for the new one: a flood of silent sockets
// that reconnect as soon as they are dropped can only push each other
// out, and a real client's request, which follows its connect at once,
// always gets its chance.
//
// Counting: --max-connections bounds every socket (pending, open and
// closing), because it protects the descriptor limit. A new socket is
// refused with 503 only when the upgraded connections alone (counted
// exactly in Server.upgraded) fill --max-connections; when pending
// handshakes hold the missing slots, the oldest pending one is dropped
// instead. A pending socket whose handshake completes counts as an
// upgraded connection from then on.
//
// Each loop keeps its pending sockets in an intrusive FIFO list (loop
// only); the server keeps their total in an atomic. OnOpen, which runs on
// the new socket's loop, drops that loop's oldest pending socket at once;
// only when the loop has none does it ask the loop holding the oldest of
// all (each loop publishes its oldest's deadline in an atomic) to drop it,
// through a task on that loop. Sockets already being dropped that way
// (Server.evicting) do not count as pending or open, so each arrival asks
// for one eviction at most; until those tasks run, the sockets may exceed
// --max-connections by their number, a few at most, which fdReserve
// covers. Nothing but atomics is touched unless a socket must be dropped.

// admit decides whether a new socket on l may open, making room by
// dropping the oldest pending handshake if needed. Loop only (l's loop).
func (s *Server) admit(l *loop) bool {
	if s.upgraded.Load() >= int64(s.cfg.MaxConnections) {
		return false
	}
	open, pending, evicting := s.open.Load(), s.pending.Load(), s.evicting.Load()
	if pending-evicting >= int64(s.cfg.MaxPending) || open-evicting >= int64(s.cfg.MaxConnections) {
		s.evictOldest(l)
	}
	return true
}

// evictOldest drops l's oldest pending handshake or, if l has none, the
// oldest of all loops. Loop only (l's loop).
func (s *Server) evictOldest(l *loop) {
	if l.hsHead != nil {
		l.evictOldest()
		return
	}
	var victim *loop
	oldest := int64(math.MaxInt64)
	s.loopsMu.Lock()
	for _, o := range s.loops {
		if at := o.oldestAt.Load(); at != 0 && at < oldest {
			victim, oldest = o, at
		}
	}
	s.loopsMu.Unlock()
	if victim == nil {
		return
	}
	s.evicting.Add(1)
	if victim.el.Execute(context.Background(), victim.evictTask) != nil { // engine shutdown
		s.evicting.Add(-1)
	}
}

// evictOldest hangs up the loop's oldest pending handshake. Loop only.
func (l *loop) evictOldest() {
	c := l.hsHead
	if c == nil {
		return
	}
	l.srv.metrics.closeReason(0, "pending evicted")
	security.Record("handshake_refused_pending_evicted", "remote", c.gc.RemoteAddr())
	c.hangUp()
}

// addPending appends c to the loop's pending handshakes. Loop only.
func (l *loop) addPending(c *conn) {
	c.hsListed = true
	c.hsPrev = l.hsTail
	if l.hsTail != nil {
		l.hsTail.hsNext = c
	} else {
		l.hsHead = c
		l.oldestAt.Store(c.deadline)
	}
	l.hsTail = c
	l.srv.pending.Add(1)
}

// removePending takes c off the loop's pending handshakes, if it is
// there. Loop only.
func (l *loop) removePending(c *conn) {
	if !c.hsListed {
		return
	}
	c.hsListed = false
	if c.hsPrev != nil {
		c.hsPrev.hsNext = c.hsNext
	} else {
		l.hsHead = c.hsNext
		if l.hsHead != nil {
			l.oldestAt.Store(l.hsHead.deadline)
		} else {
			l.oldestAt.Store(0)
		}
	}
	if c.hsNext != nil {
		c.hsNext.hsPrev = c.hsPrev
	} else {
		l.hsTail = c.hsPrev
	}
	c.hsPrev, c.hsNext = nil, nil
	l.srv.pending.Add(-1)
}
