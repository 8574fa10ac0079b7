package server

import (
	"partyline/routing"
)

// Fan-out of big rooms across event loops (routing.Fanout): a broadcast to
// a room of at least routing.Hub.FanoutMin members hands each loop one
// Fanout with that loop's members, and the loop queues the frame to them
// itself at the start of its next flush pass, so the sender's loop does
// O(loops) work instead of O(members) and every loop writes its own
// members in parallel. A pass queues Fanouts up to its budget of deliveries,
// then writes what it queued (one writev per connection, however many
// frames: the peer_joined of a join storm go out together) and leaves the
// rest for its next pass, so the loop serves its sockets (reads,
// handshakes, timers) in between: a join storm into a 10,000-member room
// delays a loop's other work by at most one pass. Before it reads a
// connection, a loop also queues what it was handed meanwhile (drainFans),
// so announcements cannot pile up behind a storm of cheap joins.

// fanBudget bounds the member deliveries one flush pass takes from the
// loop's queued Fanouts (a Fanout is never split): at least fanBudgetMin
// (about 25 ms of queueing), or fanPerConn per connection of the loop. It
// is a bound, not a batch size: what a pass writes costs one writev per
// connection however many frames each got, so a pass takes as much as it
// may. A flat 16,384 (and 262,144 at 10,000 connections) let a join storm
// queue announcements faster than the passes wrote them, a few frames per
// writev: the storm and the messages behind it fell tens of seconds behind.
func (l *loop) fanBudget() int { return max(fanBudgetMin, fanPerConn*len(l.conns)) }

const (
	fanBudgetMin = 1 << 18
	fanPerConn   = 64
)

// Fanout implements routing.Group: fo is delivered on l's goroutine in
// the order of the calls. Any goroutine.
func (l *loop) Fanout(fo *routing.Fanout) {
	l.mu.Lock()
	l.fans = append(l.fans, fo)
	l.fanQueued.Store(true)
	l.mu.Unlock()
	l.wake()
}

// drainFans queues the loop's pending Fanouts before it reads a
// connection's input, and files the connections they made dirty for the
// next flush pass. Joins then pay for their announcements as they are
// handled, as when the announcing loop queued to every member itself: a
// join storm cannot queue announcements (and the room's messages behind
// them) faster than the loop delivers them. Loop only.
func (l *loop) drainFans() {
	if !l.fanQueued.Load() {
		return
	}
	list := l.runFans(l.drained[:0])
	if len(list) > 0 {
		l.mu.Lock()
		l.dirty = append(l.dirty, list...)
		l.mu.Unlock()
		l.wake()
	}
	clear(list)
	l.drained = list[:0]
}

// Group implements routing.Looped: a room files c under its loop.
func (c *conn) Group() routing.Group { return c.loop }

// runFans queues the frames of the loop's Fanouts, oldest first, to their
// members up to fanBudget deliveries, and appends the connections it made
// dirty to list. Fanouts left over wait for the next pass. Loop only.
func (l *loop) runFans(list []*conn) []*conn {
	l.mu.Lock()
	fans := l.fans
	l.fans = l.fanSpare[:0]
	l.fanSpare = nil
	l.fanQueued.Store(false)
	l.mu.Unlock()
	done, i, budget := 0, 0, l.fanBudget()
	for ; i < len(fans) && done < budget; i++ {
		fo := fans[i]
		f, drop := fo.Frame(), fo.Droppable()
		for j := range fo.Len() {
			switch s := fo.Sender(j).(type) {
			case nil:
			case *conn:
				if s.loop != l { // swapped in from another loop
					s.Send(f, drop)
				} else if ok, filed := s.queue(f, drop); ok {
					l.fansOut++
					if filed {
						list = append(list, s)
					}
				}
			default:
				s.Send(f, drop)
			}
		}
		done += fo.Len()
		l.fansTaken++
		fo.Release()
		fans[i] = nil
	}
	if i < len(fans) { // the rest goes ahead of what came in meanwhile
		l.mu.Lock()
		l.fans = append(fans[i:len(fans):len(fans)], l.fans...)
		l.fanQueued.Store(true)
		l.mu.Unlock()
		l.wake()
	} else {
		l.fanSpare = fans[:0]
	}
	return list
}
