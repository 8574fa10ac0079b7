package cluster

import (
	"hash/maphash"
	"partyline/backplane"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"partyline/routing"
)

// dispatchers is the number of goroutines delivering other nodes' room
// traffic; a room's subject always goes to the same one, so a room's
// messages keep their order.
const dispatchers = 2

// dispatchQueue is the room messages waiting for each dispatcher.
const dispatchQueue = 1 << 16

// sub is one room subject this node listens to.
type sub struct {
	subject string
	name    string // room name in b's hub
	b       *Broker
	refs    int // control goroutine only
	ns      *nats.Subscription
	live    atomic.Bool  // the server has confirmed the subscription
	dropped atomic.Int64 // NATS's drop count of ns already counted (subs.account)
}

// subOp is a queued change of a subject's reference count.
type subOp struct {
	b     *Broker
	name  string
	delta int    // +1 or -1
	done  func() // after the subscription is confirmed (delta +1 only)
}

// subs owns the node's room subscriptions. Reference counts change only on
// the control goroutine, in queue order; lookups are lock-free.
//
// Room traffic reaches the dispatchers through channels of this package
// (dispatchQueue messages each): NATS's reader hands a message over
// without waiting, and when a dispatcher's channel is full (this node
// cannot keep up) NATS drops it and reports the subscription as a slow
// consumer. Every such drop is counted (drops, reason "room_queue_full")
// from the subscription's own count, and the room's local members are
// told (Broker.Lost): never silent.
type subs struct {
	n     *Node
	seed  maphash.Seed
	chans [dispatchers]chan *nats.Msg
	byKey sync.Map // subject -> *sub (live lookups for Ready)
	bySub sync.Map // *nats.Subscription -> *sub (dispatch)

	mu   sync.Mutex // guards ops
	ops  []subOp
	wake chan struct{}

	all map[string]*nats.Subscription // control goroutine only

	received atomic.Int64 // other nodes' room messages dispatched
}

func newSubs(n *Node) *subs {
	s := &subs{n: n, seed: maphash.MakeSeed(), wake: make(chan struct{}, 1), all: map[string]*nats.Subscription{}}
	for i := range s.chans {
		s.chans[i] = make(chan *nats.Msg, dispatchQueue)
	}
	return s
}

func (s *subs) start() error {
	n := s.n
	for i := range s.chans {
		n.wg.Add(1)
		go s.dispatch(s.chans[i])
	}
	n.wg.Add(1)
	go s.control()
	// Directed messages to this node and the per-namespace "all" subjects.
	if _, err := n.nc.Subscribe(nodeSubject(n.id), n.onDirect); err != nil {
		return err
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for ns, fn := range n.allSubs {
		fn := fn
		if _, err := n.nc.Subscribe(allSubject(ns), func(m *nats.Msg) {
			if Origin(m) != n.id {
				fn(msgOf(m))
			}
		}); err != nil {
			return err
		}
	}
	return n.nc.FlushTimeout(5 * time.Second)
}

func (s *subs) push(op subOp) {
	s.mu.Lock()
	s.ops = append(s.ops, op)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// control applies queued reference changes: subscribes on 0->1,
// unsubscribes on 1->0, and confirms new subscriptions with one round trip
// per batch before running the waiters' done callbacks.
func (s *subs) control() {
	defer s.n.wg.Done()
	var batch []subOp
	for {
		select {
		case <-s.n.ctx.Done():
			return
		case <-s.wake:
		}
		for {
			s.mu.Lock()
			batch, s.ops = s.ops, batch[:0]
			s.mu.Unlock()
			if len(batch) == 0 {
				break
			}
			s.apply(batch)
			clear(batch)
		}
	}
}

func (s *subs) apply(batch []subOp) {
	var fresh []*sub
	var dones []func()
	for _, op := range batch {
		key := op.b.prefix + Token(op.name)
		v, _ := s.byKey.Load(key)
		x, _ := v.(*sub)
		if op.delta > 0 {
			if x == nil {
				x = &sub{subject: key, name: op.name, b: op.b}
				ch := s.chans[maphash.String(s.seed, key)%dispatchers]
				ns, err := s.n.nc.ChanSubscribe(key, ch)
				if err != nil {
					s.n.log.Error("cluster: subscribe", "subject", key, "err", err)
				} else {
					x.ns = ns
					s.bySub.Store(ns, x)
				}
				s.byKey.Store(key, x)
				fresh = append(fresh, x)
			}
			x.refs++
			if op.done != nil {
				dones = append(dones, op.done)
			}
			continue
		}
		if x == nil {
			continue
		}
		if x.refs--; x.refs == 0 {
			s.byKey.Delete(key)
			if x.ns != nil {
				s.account(x) // drops since the last look
				s.bySub.Delete(x.ns)
				_ = x.ns.Unsubscribe()
			}
		}
	}
	if len(fresh) > 0 || len(dones) > 0 {
		if err := s.n.nc.FlushTimeout(2 * time.Second); err != nil {
			s.n.log.Warn("cluster: subscriptions not confirmed", "err", err)
		}
		for _, x := range fresh {
			x.live.Store(true)
		}
	}
	for _, fn := range dones {
		fn()
	}
}

// dispatch delivers other nodes' room traffic to local members.
func (s *subs) dispatch(ch chan *nats.Msg) {
	defer s.n.wg.Done()
	for {
		select {
		case <-s.n.ctx.Done():
			return
		case m := <-ch:
			v, ok := s.bySub.Load(m.Sub)
			if !ok || Origin(m) == s.n.id {
				continue
			}
			x := v.(*sub)
			s.received.Add(1)
			x.b.deliver(x.name, m)
		}
	}
}

// Broker is a routing.Broker that also carries a hub's room traffic to
// the other nodes. One per dialect hub.
type Broker struct {
	n      *Node
	ns     string
	hub    *routing.Hub
	prefix string // "pl.r.<ns>."

	// Lost, if set, is the notice (the dialect's error frame, say with
	// LostText) a room's local members get when room traffic from other
	// nodes was dropped on this node; OnLost, if set, replaces it (it
	// runs on a NATS or cluster goroutine and must not block). Set before
	// Start.
	Lost   *routing.Frame
	OnLost func(room string)

	// OnMessage, if set, sees every message from another node for a room
	// of the hub before the default delivery (a local broadcast of the
	// frame in m.Data); it returns true when it handled the message. Set
	// before Start; runs on a dispatcher goroutine.
	OnMessage func(room string, m backplane.Msg) bool
}

// SetLost implements backplane.Bus.
func (b *Broker) SetLost(f *routing.Frame) { b.Lost = f }

// SetOnLost implements backplane.Bus.
func (b *Broker) SetOnLost(fn func(room string)) { b.OnLost = fn }

// SetOnMessage implements backplane.Bus.
func (b *Broker) SetOnMessage(fn func(room string, m backplane.Msg) bool) { b.OnMessage = fn }

// msgOf is the backplane's view of a NATS message (no copy).
func msgOf(m *nats.Msg) backplane.Msg {
	return backplane.Msg{Header: backplane.Header(m.Header), Data: m.Data}
}

// Broker returns the broker of hub under namespace ns (unique per dialect
// hub, the same on every node) and makes it the hub's Watcher. Call before
// the hub has rooms.
func (n *Node) Broker(ns string, hub *routing.Hub) *Broker {
	b := &Broker{n: n, ns: ns, hub: hub, prefix: "pl.r." + ns + "."}
	hub.Watch(ns, b)
	n.mu.Lock()
	n.brokers[ns] = b
	n.mu.Unlock()
	return b
}

// Node is the broker's node.
func (b *Broker) Node() *Node { return b.n }

// roomData is what the broker keeps on a routing.Room.
type roomData struct{ subject string }

func (b *Broker) subject(r *routing.Room) string {
	if d, ok := r.BrokerData().(*roomData); ok {
		return d.subject
	}
	d := &roomData{subject: b.prefix + Token(r.Name)}
	r.SetBrokerData(d)
	return d.subject
}

// Subject is the subject of the hub's room called name.
func (b *Broker) Subject(name string) string { return b.prefix + Token(name) }

// RoomActive implements routing.Watcher: subscribe to the room.
func (b *Broker) RoomActive(r *routing.Room) {
	b.subject(r)
	b.n.subs.push(subOp{b: b, name: r.Name, delta: 1})
}

// RoomIdle implements routing.Watcher: unsubscribe from the room.
func (b *Broker) RoomIdle(r *routing.Room) {
	b.n.subs.push(subOp{b: b, name: r.Name, delta: -1})
}

// Ready reports whether this node already listens to the room called
// name (a subscription the server has confirmed). Lock-free.
func (b *Broker) Ready(name string) bool {
	v, ok := b.n.subs.byKey.Load(b.prefix + Token(name))
	return ok && v.(*sub).live.Load()
}

// Ensure makes this node listen to the room called name and calls done
// (on a cluster goroutine; it must not block) once the NATS server has
// confirmed the subscription, so that nothing another node publishes to
// the room after done is missed. The subscription is held until the
// release function given to done is called (idempotent) or, as a safety
// net for a follow-up that never ran, for a minute. Never blocks.
func (b *Broker) Ensure(name string, done func(release func())) {
	var once sync.Once
	rel := func() { once.Do(func() { b.n.subs.push(subOp{b: b, name: name, delta: -1}) }) }
	t := time.AfterFunc(time.Minute, rel)
	release := func() { t.Stop(); rel() }
	b.n.subs.push(subOp{b: b, name: name, delta: 1, done: func() { done(release) }})
}

// Publish implements routing.Broker: local members at once, other nodes
// through NATS (queued; never blocks).
func (b *Broker) Publish(r *routing.Room, f *routing.Frame, except routing.Sender, droppable bool) int {
	k := r.Broadcast(f, except, droppable)
	b.n.pub.frame(b.subject(r), f, droppable, nil)
	return k
}

// PublishName publishes f to the room called name on every node,
// including local members if the room exists here, and returns the number
// of local members it was queued for. hdr, if not nil, adds headers.
func (b *Broker) PublishName(name string, f *routing.Frame, droppable bool, hdr backplane.Header) int {
	k := 0
	if r := b.hub.Get(name); r != nil {
		k = r.Broadcast(f, nil, droppable)
	}
	b.n.pub.frame(b.Subject(name), f, droppable, nats.Header(hdr))
	return k
}

// PublishRemote publishes f to the room called name on the other nodes
// only, with extra headers hdr (nil for none).
func (b *Broker) PublishRemote(name string, f *routing.Frame, droppable bool, hdr backplane.Header) {
	b.n.pub.frame(b.Subject(name), f, droppable, nats.Header(hdr))
}

// deliver is the default handling of another node's room message.
func (b *Broker) deliver(name string, m *nats.Msg) {
	if b.OnMessage != nil && b.OnMessage(name, msgOf(m)) {
		return
	}
	if len(m.Data) == 0 {
		return
	}
	r := b.hub.Get(name)
	if r == nil {
		return
	}
	f := routing.NewRaw(m.Data)
	r.Broadcast(f, nil, m.Header.Get(HdrDrop) == "1")
	f.Release()
}

// OnAll subscribes (at Start) to the namespace's "all" subject, which every
// node with the namespace hears: for rare messages meant for every node
// (notify broadcasts, teams notices). fn runs on a NATS goroutine and never
// sees this node's own publications. Call before Start.
func (n *Node) OnAll(ns string, fn func(m backplane.Msg)) {
	n.mu.Lock()
	n.allSubs[ns] = fn
	n.mu.Unlock()
}

// PublishAll publishes f with headers hdr to the namespace's "all" subject
// (the other nodes). Never blocks.
func (n *Node) PublishAll(ns string, f *routing.Frame, hdr backplane.Header) {
	n.pub.frame(allSubject(ns), f, false, nats.Header(hdr))
}

func allSubject(ns string) string  { return "pl.a." + ns }
func nodeSubject(id string) string { return "pl.n." + Token(id) }
