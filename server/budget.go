package server

import (
	"cmp"
	"slices"

	"partyline/internal/security"
)

// The global outbound budget, --max-outbound-total.
//
// Server.outTotal counts every connection's outbound bytes: frames queued
// by Send (added there, taken off when the owning loop flushes the
// queue) and what gnet keeps in its outbound buffer after a flush
// (conn.acct, brought up to date after each write and by the loop's
// periodic refresh, since gnet drains its buffer without telling us).
// Small control frames (pings, pongs, close frames) are not counted.
//
// Policy: largest backlog first. Each loop keeps the connections that
// have bytes in gnet's buffer in loop.backlog, refreshes their counts
// every refreshTicks ticks (every tick while over budget) and publishes
// its largest in loop.largest. While the total is over the budget, a
// loop closes its connections in decreasing order of backlog as slow
// consumers (1008 "slow consumer"), as long as the total is still over
// and the one at hand is at least as large as every other loop's
// largest: across loops, the largest goes first; within a tick the
// loops close as many as it takes. A closed connection's backlog stops
// counting at once (it is freed when the socket closes, within the close
// wait, Config.CloseWait, like any slow consumer's), so the next one is
// closed only if the others are still over.
//
// The per-connection cap (--outbound-cap) still applies first: a single
// connection never holds more than twice it.

// refreshTicks is how often (in ticks) a loop under budget refreshes its
// backlog counts.
const refreshTicks = 8

// account brings c's counted gnet backlog up to date. Loop only.
func (c *conn) account() {
	nb := int64(c.gc.OutboundBuffered())
	c.outBuffered.Store(nb)
	if c.released || nb == c.acct {
		return
	}
	c.srv.outTotal.Add(nb - c.acct)
	c.acct = nb
	l := c.loop
	switch {
	case nb > 0 && c.blIdx == 0:
		l.backlog = append(l.backlog, c)
		c.blIdx = len(l.backlog)
	case nb == 0:
		l.removeBacklog(c)
	}
}

// removeBacklog takes c off the loop's backlog list. Loop only.
func (l *loop) removeBacklog(c *conn) {
	i := c.blIdx - 1
	if i < 0 {
		return
	}
	last := len(l.backlog) - 1
	if i != last {
		l.backlog[i] = l.backlog[last]
		l.backlog[i].blIdx = i + 1
	}
	l.backlog[last] = nil
	l.backlog = l.backlog[:last]
	c.blIdx = 0
}

// budget refreshes the loop's backlog counts when due and enforces the
// budget. Loop only.
func (l *loop) budget() {
	limit := l.srv.cfg.MaxOutboundTotal
	over := l.srv.outTotal.Load() > limit
	if !over && l.ticks%refreshTicks != 0 {
		return
	}
	var largest int64
	for i := len(l.backlog) - 1; i >= 0; i-- { // backwards: account may remove l.backlog[i]
		c := l.backlog[i]
		c.account()
		if c.acct > largest && c.state == stateOpen {
			largest = c.acct
		}
	}
	l.largest.Store(largest)
	if over && l.srv.outTotal.Load() > limit {
		l.enforceBudget(limit)
	}
}

// enforceBudget closes this loop's largest backlogs while the total is
// over limit and they are the largest of all loops. Loop only.
func (l *loop) enforceBudget(limit int64) {
	cands := l.cands[:0]
	for _, c := range l.backlog {
		if c.state == stateOpen && c.acct > 0 {
			cands = append(cands, c)
		}
	}
	slices.SortFunc(cands, func(a, b *conn) int { return cmp.Compare(b.acct, a.acct) })
	others := l.srv.largestElsewhere(l)
	i := 0
	for ; i < len(cands); i++ {
		c := cands[i]
		if l.srv.outTotal.Load() <= limit || c.acct < others {
			break
		}
		if c.state == stateOpen && !c.released { // a session's OnClose may have closed it meanwhile
			c.budgetClose()
		}
	}
	if i < len(cands) {
		l.largest.Store(cands[i].acct)
	} else {
		l.largest.Store(0)
	}
	clear(cands)
	l.cands = cands[:0]
}

// largestElsewhere is the largest backlog the other loops published.
func (s *Server) largestElsewhere(l *loop) int64 {
	var m int64
	s.loopsMu.Lock()
	for _, o := range s.loops {
		if o != l {
			m = max(m, o.largest.Load())
		}
	}
	s.loopsMu.Unlock()
	return m
}

// budgetClose closes c as a slow consumer for the global budget; its
// backlog stops counting at once. Loop only.
func (c *conn) budgetClose() {
	c.srv.outTotal.Add(-c.acct)
	c.acct, c.released = 0, true
	c.loop.removeBacklog(c)
	security.Record("outbound_budget", "remote", c.gc.RemoteAddr())
	c.slowClose()
}
