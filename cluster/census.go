package cluster

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Census counts a namespace's connections per room across the cluster:
// the key <ns>.<room> in the census bucket holds {"<member>": count} with
// one entry per node (Node.Member) that has connections in the room. Each
// node writes only its own entry, with revision-checked updates.
type Census struct {
	n  *Node
	ns string

	// OnReap, if set, runs after a dead node's entry was removed from a
	// room's count (on a cluster goroutine), with the totals before and
	// after. Set before Start.
	OnReap func(room string, before, after int)

	// OnChange, if set (with Watch), runs on the census watcher goroutine
	// after the local copy of a room's counts changed, whoever wrote it
	// (this node, another, or a reaper). It must not block long. Set
	// before Start.
	OnChange func(room string)

	mu    sync.Mutex                // guards cache, seq and bump
	cache map[string]map[string]int // room -> member -> count (Watch only)
	seq   uint64                    // the latest revision the watch applied (Watch only)
	bump  chan struct{}             // closed (and replaced) when seq grows
	watch bool
}

// Census returns the census of namespace ns. Call before Start.
func (n *Node) Census(ns string) *Census {
	c := &Census{n: n, ns: ns}
	n.census.mu.Lock()
	n.census.byNS[ns] = c
	n.census.mu.Unlock()
	return c
}

// Watch keeps a local copy of the namespace's counts (for Remote). Call
// before Start.
func (c *Census) Watch() {
	c.watch, c.cache, c.bump = true, map[string]map[string]int{}, make(chan struct{})
}

// errNotWatched is Sync's answer for a census without Watch.
var errNotWatched = errors.New("cluster: census has no local copy (Watch)")

// Sync waits until the local copy (Watch) holds every write made to the
// namespace's counts before the call: it asks the bucket for the
// namespace's latest revision (one round trip) and waits, at most d, for
// the watch to apply it. After a nil error, Remote (and OnChange's
// effects) reflect every registration whose census write had completed
// when Sync was called, on any node: read-your-writes. Blocks.
func (c *Census) Sync(d time.Duration) error {
	if !c.watch {
		return errNotWatched
	}
	ctx, cancel := c.n.Ctx()
	m, err := c.n.census.stream.GetLastMsgForSubject(ctx, "$KV."+BucketCensus+"."+c.ns+".>")
	cancel()
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil // nothing written yet
	}
	if err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		c.mu.Lock()
		seen, bump := c.seq, c.bump
		c.mu.Unlock()
		if seen >= m.Sequence {
			return nil
		}
		select {
		case <-bump:
		case <-t.C:
			return fmt.Errorf("cluster: census copy of %s not at revision %d within %v (at %d)", c.ns, m.Sequence, d, seen)
		case <-c.n.ctx.Done():
			return c.n.ctx.Err()
		}
	}
}

// applied records that the watch applied revision rev (after OnChange).
func (c *Census) applied(rev uint64) {
	c.mu.Lock()
	if rev > c.seq {
		c.seq = rev
		close(c.bump)
		c.bump = make(chan struct{})
	}
	c.mu.Unlock()
}

func (c *Census) key(room string) string { return c.ns + "." + Token(room) }

// Mark asks for this node's entry for room to be brought up to date with
// count() (read when the write happens, so that a burst of changes costs
// one write). done, if not nil, runs afterwards with the cluster totals
// before and after the write (both the local count if the census could
// not be reached). Marks of one room are applied in order, each done after
// its write. Never blocks; done runs on the census goroutine and must not
// block long.
func (c *Census) Mark(room string, count func() int, done func(before, after int)) {
	c.n.census.mark(c, room, count, done)
}

// Total is the room's count across the cluster. Blocks.
func (c *Census) Total(room string) (int, error) {
	ctx, cancel := c.n.Ctx()
	defer cancel()
	e, err := c.n.buckets[BucketCensus].Get(ctx, c.key(room))
	if NotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var m map[string]int
	_ = json.Unmarshal(e.Value(), &m)
	return sum(m), nil
}

// Remote is the room's count on the other nodes, from the local copy
// (Watch). Lock: a short mutex, no I/O; fine on an event loop.
func (c *Census) Remote(room string) int {
	me := c.n.Member()
	c.mu.Lock()
	defer c.mu.Unlock()
	t := 0
	for k, v := range c.cache[room] {
		if k != me {
			t += v
		}
	}
	return t
}

func sum(m map[string]int) int {
	t := 0
	for _, v := range m {
		t += v
	}
	return t
}

// pending is one room's queued marks.
type pending struct {
	c     *Census
	room  string
	count func() int
	dones []func(before, after int)
	tries int // failed writes so far (retries back off)
}

// censusShards is the number of goroutines writing census entries: a key
// always goes to the same one, so one room's writes keep their order while
// writes of different rooms do not wait for each other.
const censusShards = 16

// censusWriter applies every census's marks on censusShards goroutines,
// sharded by key.
type censusWriter struct {
	n      *Node
	stream jetstream.Stream // the bucket's stream (Census.Sync)
	seed   maphash.Seed
	mu     sync.Mutex // guards byNS
	byNS   map[string]*Census
	shards [censusShards]censusShard
}

// censusShard is one writer goroutine's queue: at most one pending write
// per key (later marks coalesce into it), in queue order.
type censusShard struct {
	mu   sync.Mutex          // guards the following
	q    map[string]*pending // by key
	keys []string            // queue order
	busy bool
	wake chan struct{}
}

func newCensusWriter(n *Node) *censusWriter {
	w := &censusWriter{n: n, seed: maphash.MakeSeed(), byNS: map[string]*Census{}}
	for i := range w.shards {
		w.shards[i] = censusShard{q: map[string]*pending{}, wake: make(chan struct{}, 1)}
	}
	return w
}

func (w *censusWriter) mark(c *Census, room string, count func() int, done func(before, after int)) {
	w.queue(c, room, count, done, 0)
}

// queue adds a mark to its key's shard; tries carries a failed write's
// count into its retry.
func (w *censusWriter) queue(c *Census, room string, count func() int, done func(before, after int), tries int) {
	key := c.key(room)
	sh := &w.shards[maphash.String(w.seed, key)%censusShards]
	sh.mu.Lock()
	p := sh.q[key]
	if p == nil {
		p = &pending{c: c, room: room}
		sh.q[key] = p
		sh.keys = append(sh.keys, key)
	}
	p.count, p.tries = count, max(p.tries, tries)
	if done != nil {
		p.dones = append(p.dones, done)
	}
	sh.mu.Unlock()
	select {
	case sh.wake <- struct{}{}:
	default:
	}
}

func (w *censusWriter) start() error {
	n := w.n
	for i := range w.shards {
		n.wg.Add(1)
		go w.run(&w.shards[i])
	}
	var filters []string
	w.mu.Lock()
	for ns, c := range w.byNS {
		if c.watch {
			filters = append(filters, ns+".>")
		}
	}
	w.mu.Unlock()
	if len(filters) > 0 {
		ctx, cancel := n.Ctx()
		st, err := n.js.Stream(ctx, "KV_"+BucketCensus)
		cancel()
		if err != nil {
			return err
		}
		w.stream = st
		kw, err := n.buckets[BucketCensus].WatchFiltered(n.ctx, filters)
		if err != nil {
			n.log.Error("cluster: census watch", "err", err)
		} else {
			n.wg.Add(1)
			go w.watch(kw)
		}
	}
	n.OnNodeDead(w.reap)
	return nil
}

// run writes one shard's marks. A write that fails (NATS unreachable) is
// not lost: its dones run with the local count, and the key is queued
// again after a back-off (coalescing with any later mark), until a write
// succeeds or the node stops.
func (w *censusWriter) run(sh *censusShard) {
	defer w.n.wg.Done()
	for {
		select {
		case <-w.n.ctx.Done():
			return
		case <-sh.wake:
		}
		for {
			sh.mu.Lock()
			if len(sh.keys) == 0 {
				sh.busy = false
				sh.mu.Unlock()
				break
			}
			key := sh.keys[0]
			sh.keys[0] = ""
			sh.keys = sh.keys[1:]
			p := sh.q[key]
			delete(sh.q, key)
			sh.busy = true
			sh.mu.Unlock()
			before, after, err := w.write(key, p.count())
			if err != nil {
				if !w.n.stopped.Load() {
					if p.tries == 0 {
						w.n.log.Warn("cluster: census write failed, retrying", "key", key, "err", err)
					}
					c, room, count, tries := p.c, p.room, p.count, p.tries+1
					time.AfterFunc(retryDelay(tries), func() { w.queue(c, room, count, nil, tries) })
				}
				before, after = p.count(), p.count()
			}
			for _, fn := range p.dones {
				fn(before, after)
			}
		}
	}
}

// drain waits up to d for the queued marks to be written.
func (w *censusWriter) drain(d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		empty := true
		for i := range w.shards {
			sh := &w.shards[i]
			sh.mu.Lock()
			empty = empty && len(sh.keys) == 0 && !sh.busy
			sh.mu.Unlock()
		}
		if empty {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// write sets this node's entry of key to count with a revision-checked
// update, retried on conflict. Blocks.
func (w *censusWriter) write(key string, count int) (before, after int, err error) {
	me := w.n.Member()
	return update(w.n, BucketCensus, key, func(m map[string]int) (bool, error) {
		if m[me] == count {
			return false, nil
		}
		if count == 0 {
			delete(m, me)
		} else {
			m[me] = count
		}
		return true, nil
	})
}

// update is a revision-checked read-modify-write of a {member: count}
// value; fn changes m and reports whether anything changed. An empty map
// deletes the key.
func update(n *Node, bucket, key string, fn func(m map[string]int) (bool, error)) (before, after int, err error) {
	kv := n.buckets[bucket]
	for try := 0; try < 100; try++ {
		ctx, cancel := n.Ctx()
		var rev uint64
		m := map[string]int{}
		e, err := kv.Get(ctx, key)
		switch {
		case err == nil:
			rev = e.Revision()
			_ = json.Unmarshal(e.Value(), &m)
		case !NotFound(err):
			cancel()
			return 0, 0, err
		}
		before = sum(m)
		changed, err := fn(m)
		if err != nil || !changed {
			cancel()
			return before, before, err
		}
		after = sum(m)
		switch {
		case len(m) == 0 && rev == 0:
			err = nil
		case len(m) == 0:
			err = kv.Delete(ctx, key, jetstream.LastRevision(rev))
		case rev == 0:
			b, _ := json.Marshal(m)
			_, err = kv.Create(ctx, key, b)
		default:
			b, _ := json.Marshal(m)
			_, err = kv.Update(ctx, key, b, rev)
		}
		cancel()
		if err == nil {
			return before, after, nil
		}
		if !Conflict(err) {
			return 0, 0, err
		}
		backoff(try)
	}
	return 0, 0, errTooManyConflicts
}

func (w *censusWriter) watch(kw jetstream.KeyWatcher) {
	defer w.n.wg.Done()
	defer kw.Stop()
	for {
		select {
		case <-w.n.ctx.Done():
			return
		case e, ok := <-kw.Updates():
			if !ok {
				return
			}
			if e == nil {
				continue
			}
			ns, tok, _ := strings.Cut(e.Key(), ".")
			room, ok := Untoken(tok)
			w.mu.Lock()
			c := w.byNS[ns]
			w.mu.Unlock()
			if c == nil || !ok {
				continue
			}
			var m map[string]int
			if e.Operation() == jetstream.KeyValuePut {
				_ = json.Unmarshal(e.Value(), &m)
			}
			c.mu.Lock()
			if len(m) == 0 {
				delete(c.cache, room)
			} else {
				c.cache[room] = m
			}
			c.mu.Unlock()
			if c.OnChange != nil {
				c.OnChange(room)
			}
			c.applied(e.Revision())
		}
	}
}

// reap removes a dead node's entries from every count; it returns the
// first error that left one in place.
func (w *censusWriter) reap(g Gone) error {
	n := w.n
	ctx, cancel := context5(n)
	keys, first := listKeys(ctx, n.buckets[BucketCensus], ">")
	cancel()
	for _, key := range keys {
		before, after, err := update(n, BucketCensus, key, func(m map[string]int) (bool, error) {
			changed := false
			for member := range m {
				if g.Holds(member) {
					delete(m, member)
					changed = true
				}
			}
			return changed, nil
		})
		if err != nil && first == nil {
			first = err
		}
		if err != nil || before == after {
			continue
		}
		ns, tok, _ := strings.Cut(key, ".")
		room, _ := Untoken(tok)
		w.mu.Lock()
		c := w.byNS[ns]
		w.mu.Unlock()
		if c != nil && c.OnReap != nil {
			c.OnReap(room, before, after)
		}
	}
	return first
}

// RemoteTotal is the room's count on the other nodes, read from the
// bucket. Blocks.
func (c *Census) RemoteTotal(room string) (int, error) {
	ctx, cancel := c.n.Ctx()
	defer cancel()
	e, err := c.n.buckets[BucketCensus].Get(ctx, c.key(room))
	if NotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var m map[string]int
	_ = json.Unmarshal(e.Value(), &m)
	delete(m, c.n.Member())
	return sum(m), nil
}
