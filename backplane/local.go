package backplane

import (
	"log/slog"
	"sync"
	"time"

	"partyline/routing"
	"partyline/store"
)

// DefaultWorkers bounds Local's worker pool (Go) unless NewLocal is told
// otherwise.
const DefaultWorkers = 256

// Local is the single-node Node: every room's members are here, so a bus
// is the hub's own fan-out, a census is this process's counts (nobody
// else's: Remote is 0) and names are a map. Its callbacks run before the
// call that gave them returns.
type Local struct {
	id  string
	log *slog.Logger
	sem chan struct{} // one slot per running Go

	mu    sync.Mutex // guards names
	names map[nameKey]uint64
	rev   uint64
}

// NewLocal returns a single-node backplane named id whose worker pool
// runs at most workers functions at once (0: DefaultWorkers).
func NewLocal(id string, log *slog.Logger, workers int) *Local {
	if log == nil {
		log = slog.Default()
	}
	if workers <= 0 {
		workers = DefaultWorkers
	}
	return &Local{id: id, log: log, sem: make(chan struct{}, workers), names: map[nameKey]uint64{}}
}

// ID implements Node.
func (l *Local) ID() string { return l.id }

// Logger implements Node.
func (l *Local) Logger() *slog.Logger { return l.log }

// Bus implements Node: the hub's own fan-out.
func (l *Local) Bus(ns string, hub *routing.Hub) Bus { return localBus{hub: hub} }

// Census implements Node.
func (l *Local) Census(ns string) Census { return &localCensus{counts: map[string]int{}} }

// Names implements Node.
func (l *Local) Names(ns string) Names { return localNames{l: l, ns: ns} }

// Go implements Node: a goroutine per call, at most the pool's size at
// once.
func (l *Local) Go(fn func()) bool {
	select {
	case l.sem <- struct{}{}:
	default:
		return false
	}
	go func() {
		defer func() { <-l.sem }()
		fn()
	}()
	return true
}

// Cleanup implements Node: the shared state is this process's memory, so
// fn runs at once; an error (none of Local's clean-ups fails) is logged.
func (l *Local) Cleanup(fn func() error) {
	if err := fn(); err != nil {
		l.log.Error("backplane: clean-up failed", "err", err)
	}
}

// PublishAll implements Node: there is no other node.
func (l *Local) PublishAll(string, *routing.Frame, Header) {}

// OnAll implements Node: there is no other node to hear from.
func (l *Local) OnAll(string, func(Msg)) {}

// OpenStore implements Node: a Pebble store on disk.
func (l *Local) OpenStore(dir string, opts store.PebbleOptions) (store.Store, error) {
	return store.OpenPebble(dir, opts)
}

// localBus delivers to the hub's local rooms only.
type localBus struct{ hub *routing.Hub }

func (b localBus) Publish(r *routing.Room, f *routing.Frame, except routing.Sender, droppable bool) int {
	return r.Broadcast(f, except, droppable)
}

func (b localBus) Ensure(_ string, done func(release func())) { done(func() {}) }

func (b localBus) PublishName(name string, f *routing.Frame, droppable bool, _ Header) int {
	if r := b.hub.Get(name); r != nil {
		return r.Broadcast(f, nil, droppable)
	}
	return 0
}

func (localBus) PublishRemote(string, *routing.Frame, bool, Header) {}
func (localBus) SetLost(*routing.Frame)                             {}
func (localBus) SetOnLost(func(string))                             {}
func (localBus) SetOnMessage(func(string, Msg) bool)                {}

// localCensus is this process's counts.
type localCensus struct {
	mu     sync.Mutex
	counts map[string]int
}

// Mark reads count and calls done before it returns; marks of one census
// are serialised, so before/after chain like a cluster's.
func (c *localCensus) Mark(key string, count func() int, done func(before, after int)) {
	c.mu.Lock()
	before, after := c.counts[key], count()
	if after > 0 {
		c.counts[key] = after
	} else {
		delete(c.counts, key)
	}
	c.mu.Unlock()
	if done != nil {
		done(before, after)
	}
}

func (c *localCensus) Watch()                           {}
func (c *localCensus) Remote(string) int                { return 0 }
func (c *localCensus) RemoteTotal(string) (int, error)  { return 0, nil }
func (c *localCensus) Sync(time.Duration) error         { return nil }
func (c *localCensus) SetOnReap(func(string, int, int)) {}
func (c *localCensus) SetOnChange(func(string))         {}

// localNames is a namespace of Local's names.
type localNames struct {
	l  *Local
	ns string
}

// nameKey is a name of Local's: namespace, scope, name.
type nameKey struct{ ns, scope, name string }

func (n localNames) key(scope, name string) nameKey { return nameKey{n.ns, scope, name} }

func (n localNames) Claim(scope, name string) (uint64, bool, error) {
	k := n.key(scope, name)
	n.l.mu.Lock()
	defer n.l.mu.Unlock()
	if _, held := n.l.names[k]; held {
		return 0, false, nil
	}
	n.l.rev++
	n.l.names[k] = n.l.rev
	return n.l.rev, true, nil
}

func (n localNames) Release(scope, name string, rev uint64) error {
	k := n.key(scope, name)
	n.l.mu.Lock()
	if n.l.names[k] == rev {
		delete(n.l.names, k)
	}
	n.l.mu.Unlock()
	return nil
}

var _ Node = (*Local)(nil)
