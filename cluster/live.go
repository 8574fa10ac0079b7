package cluster

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"partyline/backplane"
)

// liveness keeps this node's lease fresh in the nodes bucket and watches
// the other nodes' leases. A lease is a key the node re-puts every
// Lease/3; a node whose key has not changed for Lease (while this node was
// connected to NATS the whole time) is dead, as is one whose key was
// deleted (a graceful leave). The lowest-named live node then runs the
// OnNodeDead reapers for it.
type liveness struct {
	n   *Node
	inc string // this process's incarnation

	mu        sync.Mutex           // guards the following
	seen      map[string]time.Time // other nodes -> when their lease last changed
	incs      map[string]string    // other nodes -> incarnation in their last lease
	connected bool
	since     time.Time // connected since
}

func newLiveness(n *Node) *liveness {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &liveness{n: n, inc: hex.EncodeToString(b[:]), seen: map[string]time.Time{}, incs: map[string]string{}}
}

// Member is this process's name in shared state: node id and incarnation,
// so that entries of an earlier run of the same node id can be told apart.
func (n *Node) Member() string { return n.id + "#" + n.live.inc }

// MemberNode splits a Member string into node id and incarnation.
func MemberNode(member string) (node, inc string) { return backplane.MemberNode(member) }

// Gone names the entries a reaper (OnNodeDead) removes: those of a dead
// node (any incarnation but keepInc), and at a node's start also those of
// every node that has no lease at all. The latter are orphans: when every
// node of a cluster stops, nobody reaps the last ones, and their leases
// expire from the bucket; the next node to start removes what they left.
type Gone struct {
	node, keepInc string
	orphans       *leaseCheck // nil: only node
}

// Holds reports whether member (a Member string) is one of the gone.
func (g Gone) Holds(member string) bool {
	id, inc := MemberNode(member)
	if id == g.node {
		return g.keepInc == "" || inc != g.keepInc
	}
	return g.orphans != nil && !g.orphans.alive(id)
}

// leaseCheck answers, once per node id, whether the node has a lease. A
// node puts its lease before it writes any shared entry, so an entry read
// after the check's answer cannot belong to a node the check missed.
type leaseCheck struct {
	n    *Node
	mu   sync.Mutex
	seen map[string]bool
}

func (c *leaseCheck) alive(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok, known := c.seen[id]; known {
		return ok
	}
	ctx, cancel := c.n.Ctx()
	_, err := c.n.buckets[BucketNodes].Get(ctx, Token(id))
	cancel()
	ok := err == nil
	if err != nil && !NotFound(err) {
		ok = true // unsure: keep its entries
		c.n.log.Warn("cluster: lease check", "node", id, "err", err)
	}
	if !ok {
		// As for a dead node: a mark first, for if it is only cut off and
		// comes back (then it learns that what it held is gone). Its
		// incarnation is not known (no lease): a mark written again
		// later is written only while it still has no lease, so that a
		// run of the node started since is not fenced.
		c.n.live.fence(id, "", func() (bool, error) {
			ctx, cancel := c.n.Ctx()
			_, err := c.n.buckets[BucketNodes].Get(ctx, Token(id))
			cancel()
			if err != nil && !NotFound(err) {
				return false, err
			}
			return err == nil, nil
		})
	}
	c.seen[id] = ok
	return ok
}

// dead lists the node ids found without a lease.
func (c *leaseCheck) dead() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for id, ok := range c.seen {
		if !ok {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

func (l *liveness) start() error {
	n := l.n
	kv := n.buckets[BucketNodes]
	ctx, cancel := n.Ctx()
	_, err := kv.Put(ctx, Token(n.id), []byte(n.Member()))
	cancel()
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.connected, l.since = true, time.Now()
	l.mu.Unlock()
	w, err := kv.WatchAll(n.ctx)
	if err != nil {
		return err
	}
	// A fence mark left for an earlier run of this node id is old news:
	// this run starts with nothing shared.
	fence := n.buckets[BucketFence]
	ctx, cancel = n.Ctx()
	err = fence.Delete(ctx, Token(n.id))
	cancel()
	if err != nil && !NotFound(err) {
		return err
	}
	fw, err := fence.Watch(n.ctx, Token(n.id), jetstream.UpdatesOnly())
	if err != nil {
		return err
	}
	// Start returns before Stop can run, so these Adds precede its Wait.
	n.wg.Add(5)
	go l.heartbeat()
	go l.watch(w)
	go l.check()
	go l.fenced(fw)
	// Entries an earlier run of this node id left behind (a crash and a
	// quick restart), and those of nodes without a lease (the whole
	// cluster stopped): nobody else will remove them. Counted, so that
	// Stop does not close the connection under it.
	go func() {
		defer n.wg.Done()
		lc := &leaseCheck{n: n, seen: map[string]bool{n.id: true}}
		l.reap(Gone{node: n.id, keepInc: l.inc, orphans: lc})
		if ids := lc.dead(); len(ids) > 0 {
			n.log.Info("cluster: removed the entries of nodes without a lease", "nodes", ids)
		}
	}()
	return nil
}

func (l *liveness) heartbeat() {
	defer l.n.wg.Done()
	n := l.n
	t := time.NewTicker(n.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := n.Ctx()
		if _, err := n.buckets[BucketNodes].Put(ctx, Token(n.id), []byte(n.Member())); err != nil && !n.stopped.Load() {
			n.log.Warn("cluster: lease not renewed", "err", err)
		}
		cancel()
	}
}

func (l *liveness) watch(w jetstream.KeyWatcher) {
	defer l.n.wg.Done()
	defer w.Stop()
	for {
		select {
		case <-l.n.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue // end of the initial values
			}
			id, ok := Untoken(e.Key())
			if !ok || id == l.n.id {
				continue
			}
			switch e.Operation() {
			case jetstream.KeyValuePut:
				_, inc := MemberNode(string(e.Value()))
				l.mu.Lock()
				l.seen[id], l.incs[id] = time.Now(), inc
				l.mu.Unlock()
			default: // deleted: the node left
				l.dead(id)
			}
		}
	}
}

func (l *liveness) check() {
	defer l.n.wg.Done()
	n := l.n
	t := time.NewTicker(n.cfg.Lease / 4)
	defer t.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C:
		}
		now := time.Now()
		var dead []string
		l.mu.Lock()
		if l.connected && now.Sub(l.since) >= n.cfg.Lease {
			for id, at := range l.seen {
				if now.Sub(at) > n.cfg.Lease {
					dead = append(dead, id)
				}
			}
		}
		l.mu.Unlock()
		for _, id := range dead {
			l.dead(id)
		}
	}
}

// dead forgets node id and, if this node is the lowest live one, reaps it.
// It runs only on watch and check, goroutines counted in n.wg: its wg.Add
// happens while the count is above zero, so it never races Stop's Wait.
func (l *liveness) dead(id string) {
	l.mu.Lock()
	if _, ok := l.seen[id]; !ok {
		l.mu.Unlock()
		return
	}
	inc := l.incs[id]
	delete(l.seen, id)
	delete(l.incs, id)
	first := true
	for other := range l.seen {
		if other < l.n.id {
			first = false
		}
	}
	l.mu.Unlock()
	l.n.log.Info("cluster: node gone", "gone", id, "reaper", first)
	if first {
		l.n.wg.Add(1)
		go func() {
			defer l.n.wg.Done()
			// Fence first: if the node is alive but cut off, it learns on
			// its return that what it held is gone.
			l.fence(id, inc, nil)
			l.reap(Gone{node: id})
		}()
	}
}

// fence writes the fence mark of node id, naming its incarnation inc
// when known (fenced ignores a mark naming another incarnation: a run
// started since holds nothing that was removed). A mark that cannot be
// written is written again on the clean-up queue until it is, so a node
// only cut off learns it was reaped however long the write takes; skip,
// if not nil, is asked before each write again: true means the mark is no
// longer needed.
func (l *liveness) fence(id, inc string, skip func() (bool, error)) {
	n := l.n
	mark := time.Now().UTC().Format(time.RFC3339Nano) + " by " + n.id
	if inc != "" {
		mark += " for " + id + "#" + inc
	}
	write := func() error {
		ctx, cancel := n.Ctx()
		defer cancel()
		_, err := n.buckets[BucketFence].Put(ctx, Token(id), []byte(mark))
		return err
	}
	err := write()
	if err == nil || n.stopped.Load() {
		return
	}
	n.log.Warn("cluster: fence mark, written again later", "node", id, "err", err)
	n.Cleanup(func() error {
		if skip != nil {
			if done, err := skip(); done || err != nil {
				return err
			}
		}
		return write()
	})
}

// fencedInc is the incarnation a fence mark names, "" for any.
func fencedInc(mark string) string {
	_, member, ok := strings.Cut(mark, " for ")
	if !ok {
		return ""
	}
	_, inc := MemberNode(member)
	return inc
}

// fenced watches this node's fence mark: one written by a reaper means the
// others removed this node's shared state, so its connections must go.
func (l *liveness) fenced(w jetstream.KeyWatcher) {
	n := l.n
	defer n.wg.Done()
	defer w.Stop()
	for {
		select {
		case <-n.ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil || e.Operation() != jetstream.KeyValuePut || n.stopped.Load() {
				continue
			}
			if inc := fencedInc(string(e.Value())); inc != "" && inc != l.inc {
				continue // an earlier run's, written late: not this one's
			}
			n.log.Warn("cluster: this node was taken for dead and its shared state removed: closing its connections", "mark", string(e.Value()))
			ctx, cancel := n.Ctx()
			_ = n.buckets[BucketFence].Delete(ctx, Token(n.id))
			cancel()
			n.mu.Lock()
			fns := slices.Clone(n.onFence)
			n.mu.Unlock()
			for _, fn := range fns {
				fn()
			}
		}
	}
}

// reap runs every reaper for g, in order, once; a reaper that fails (it
// did all it could, but NATS did not take every change) is queued on the
// clean-up queue, which runs it again until it succeeds. One cut short by
// Stop is not: once the dead node's lease is gone from the bucket, the
// next node to start removes what is left (orphans).
func (l *liveness) reap(g Gone) {
	n := l.n
	n.mu.Lock()
	fns := slices.Clone(n.onDead)
	n.mu.Unlock()
	for _, fn := range fns {
		err := fn(g)
		if err == nil {
			continue
		}
		if n.stopped.Load() {
			n.log.Info("cluster: reap cut short by stop (the next node to start removes what is left)", "gone", g.node, "err", err)
			continue
		}
		n.log.Warn("cluster: reap failed, queued to run again", "gone", g.node, "err", err)
		n.Cleanup(func() error { return fn(l.again(g)) })
	}
}

// again is g for a reaper run again, maybe long after g was made: who is
// gone is asked anew. The orphans are checked again, and a dead node that
// is back (its lease renewed since: it restarted, or was only cut off and
// its fence mark closes its connections) keeps the entries of its current
// incarnation. A dead node's lease stays in the bucket for a while: only
// a renewal seen since its death says it is back.
func (l *liveness) again(g Gone) Gone {
	if g.orphans != nil {
		g.orphans = &leaseCheck{n: l.n, seen: map[string]bool{l.n.id: true}}
	}
	if g.keepInc != "" { // this node's earlier runs
		return g
	}
	l.mu.Lock()
	if _, back := l.seen[g.node]; back {
		g.keepInc = l.incs[g.node]
	}
	l.mu.Unlock()
	return g
}

func (l *liveness) disconnected() {
	l.mu.Lock()
	l.connected = false
	l.mu.Unlock()
}

// reconnected restarts every other node's clock: while we were away we
// could not see their heartbeats.
func (l *liveness) reconnected() {
	now := time.Now()
	l.mu.Lock()
	l.connected, l.since = true, now
	for id := range l.seen {
		l.seen[id] = now
	}
	l.mu.Unlock()
}

// leave deletes this node's lease: the others clean up at once.
func (l *liveness) leave() {
	ctx, cancel := l.n.Ctx()
	defer cancel()
	_ = l.n.buckets[BucketNodes].Delete(ctx, Token(l.n.id))
}

func (l *liveness) alive() []string {
	l.mu.Lock()
	ids := []string{l.n.id}
	for id := range l.seen {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	slices.Sort(ids)
	return ids
}
