package cluster

import (
	"partyline/backplane"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
)

// dropReason is why cluster traffic or a clean-up was lost
// (partyline_cluster_dropped_total{reason}).
type dropReason int

const (
	// Room traffic from other nodes dropped because this node's queue to
	// its dispatchers was full (NATS reports the room's subscription as a
	// slow consumer).
	dropRoomQueue dropReason = iota
	// Messages on this node's other subscriptions (directed messages, the
	// "all" subjects) dropped by NATS as a slow consumer.
	dropSlowConsumer
	// Clean-ups given up after repeated failures that were not NATS being
	// unreachable (see cleanups).
	dropCleanupFailed
	// Clean-ups still queued when the node stopped (its reaper removes
	// what they would have).
	dropCleanupStop
	numDropReasons
)

// DropReasons names the reasons, indexed like Metrics.DroppedBy.
var DropReasons = [numDropReasons]string{"room_queue_full", "slow_consumer", "cleanup_failed", "cleanup_at_stop"}

// dropLogInterval is how often drops are logged (once per interval with
// the counts since the last line, never once per drop).
const dropLogInterval = 10 * time.Second

// LostText is the notice a room's local members get when room traffic
// from other nodes was dropped here (Broker.Lost).
const LostText = backplane.LostText

// drops counts losses by reason and logs them once per interval.
type drops struct {
	n      *Node
	counts [numDropReasons]atomic.Int64
	other  sync.Map // *nats.Subscription -> *atomic.Int64: drops seen (not room subscriptions)
}

func (d *drops) add(r dropReason, k int64) { d.counts[r].Add(k) }

// seen raises *last to now (a subscription's Dropped count) and returns by
// how much it rose.
func seen(last *atomic.Int64, now int64) int64 {
	for {
		prev := last.Load()
		if now <= prev {
			return 0
		}
		if last.CompareAndSwap(prev, now) {
			return now - prev
		}
	}
}

// slowConsumer handles NATS's slow-consumer report for s (from the
// connection's async error handler): its drops are counted and, for a
// room, the room's local members are told.
func (d *drops) slowConsumer(s *nats.Subscription) {
	if s == nil {
		d.add(dropSlowConsumer, 1)
		return
	}
	if v, ok := d.n.subs.bySub.Load(s); ok {
		d.n.subs.account(v.(*sub))
		return
	}
	k, err := s.Dropped()
	if err != nil {
		d.add(dropSlowConsumer, 1)
		return
	}
	v, _ := d.other.LoadOrStore(s, new(atomic.Int64))
	d.add(dropSlowConsumer, max(seen(v.(*atomic.Int64), int64(k)), 1))
}

// run accounts the room subscriptions' drops and logs what was dropped
// since the last line, once per interval.
func (d *drops) run() {
	n := d.n
	defer n.wg.Done()
	t := time.NewTicker(dropLogInterval)
	defer t.Stop()
	var logged [numDropReasons]int64
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		n.subs.bySub.Range(func(_, v any) bool {
			n.subs.account(v.(*sub))
			return true
		})
		for r := range d.counts {
			now := d.counts[r].Load()
			if now > logged[r] {
				n.log.Warn("cluster: dropped", "reason", DropReasons[r], "count", now-logged[r], "total", now, "interval", dropLogInterval)
				logged[r] = now
			}
		}
	}
}

// account counts the messages NATS dropped on x's subscription since the
// last look (its dispatcher queue was full) and tells the room's local
// members that they may have missed some.
func (s *subs) account(x *sub) {
	if x.ns == nil {
		return
	}
	k, err := x.ns.Dropped()
	if err != nil {
		return
	}
	if delta := seen(&x.dropped, int64(k)); delta > 0 {
		s.n.drops.add(dropRoomQueue, delta)
		x.b.lost(x.name)
	}
}

// lost tells the local members of the room called name that room traffic
// from other nodes was dropped here: the dialect's notice (Lost), or its
// OnLost.
func (b *Broker) lost(name string) {
	if b.OnLost != nil {
		b.OnLost(name)
		return
	}
	if b.Lost == nil {
		return
	}
	if r := b.hub.Get(name); r != nil {
		r.Broadcast(b.Lost, nil, false)
	}
}
