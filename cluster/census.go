package cluster

import (
	"encoding/json"
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

	mu    sync.Mutex                // guards cache
	cache map[string]map[string]int // room -> member -> count (Watch only)
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
func (c *Census) Watch() { c.watch, c.cache = true, map[string]map[string]int{} }

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
}

// censusWriter applies every census's marks on one goroutine.
type censusWriter struct {
	n    *Node
	mu   sync.Mutex // guards the following
	byNS map[string]*Census
	q    map[string]*pending // by key
	keys []string            // queue order
	busy bool
	wake chan struct{}
	idle chan struct{} // signalled when the queue empties
}

func newCensusWriter(n *Node) *censusWriter {
	return &censusWriter{n: n, byNS: map[string]*Census{}, q: map[string]*pending{},
		wake: make(chan struct{}, 1), idle: make(chan struct{}, 1)}
}

func (w *censusWriter) mark(c *Census, room string, count func() int, done func(before, after int)) {
	key := c.key(room)
	w.mu.Lock()
	p := w.q[key]
	if p == nil {
		p = &pending{c: c, room: room}
		w.q[key] = p
		w.keys = append(w.keys, key)
	}
	p.count = count
	if done != nil {
		p.dones = append(p.dones, done)
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *censusWriter) start() {
	n := w.n
	n.wg.Add(1)
	go w.run()
	var filters []string
	w.mu.Lock()
	for ns, c := range w.byNS {
		if c.watch {
			filters = append(filters, ns+".>")
		}
	}
	w.mu.Unlock()
	if len(filters) > 0 {
		kw, err := n.buckets[BucketCensus].WatchFiltered(n.ctx, filters)
		if err != nil {
			n.log.Error("cluster: census watch", "err", err)
		} else {
			n.wg.Add(1)
			go w.watch(kw)
		}
	}
	n.OnNodeDead(w.reap)
}

func (w *censusWriter) run() {
	defer w.n.wg.Done()
	for {
		select {
		case <-w.n.ctx.Done():
			return
		case <-w.wake:
		}
		for {
			w.mu.Lock()
			if len(w.keys) == 0 {
				w.busy = false
				w.mu.Unlock()
				select {
				case w.idle <- struct{}{}:
				default:
				}
				break
			}
			key := w.keys[0]
			w.keys = w.keys[1:]
			p := w.q[key]
			delete(w.q, key)
			w.busy = true
			w.mu.Unlock()
			before, after, err := w.write(key, p.count())
			if err != nil {
				if !w.n.stopped.Load() {
					w.n.log.Warn("cluster: census write", "key", key, "err", err)
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
		w.mu.Lock()
		empty := len(w.keys) == 0 && !w.busy
		w.mu.Unlock()
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
		}
	}
}

// reap removes a dead node's entries from every count.
func (w *censusWriter) reap(node, keepInc string) {
	n := w.n
	ctx, cancel := context5(n)
	defer cancel()
	kl, err := n.buckets[BucketCensus].ListKeys(ctx)
	if err != nil {
		if !NotFound(err) && !strings.Contains(err.Error(), "no keys") {
			n.log.Warn("cluster: census reap", "err", err)
		}
		return
	}
	var keys []string
	for k := range kl.Keys() {
		keys = append(keys, k)
	}
	for _, key := range keys {
		before, after, err := update(n, BucketCensus, key, func(m map[string]int) (bool, error) {
			changed := false
			for member := range m {
				if Stale(member, node, keepInc) {
					delete(m, member)
					changed = true
				}
			}
			return changed, nil
		})
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
