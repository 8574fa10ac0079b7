// Package cluster is the cross-node backplane: several partyline
// processes ("nodes") share rooms, membership and counts through one NATS
// system, never through a protocol of their own.
//
//   - Room traffic: each dialect Hub gets a Broker. A room's frames are
//     published once, already encoded, on the subject pl.r.<ns>.<room>
//     with a Pl-Origin header naming the node; a node subscribes to a
//     room's subject only while the room has local members (the Hub's
//     Watcher hooks) and never delivers its own publications twice (the
//     connection is NoEcho and the origin is checked).
//   - Shared state lives in JetStream key-value buckets: party rooms and
//     retained state (pl_party), per-node connection counts (pl_census),
//     claimed names (pl_names) and node leases (pl_nodes).
//   - Room logs (RoomLog): a JetStream stream with a subject per room that
//     sequences a dialect's room frames; each node follows the rooms it has
//     members in, on one goroutine per followed room (roomlog.go).
//   - A node that stops heart-beating for the lease is dead: the lowest
//     live node removes what it held (OnNodeDead).
//
// Concurrency: every exported method is safe from any goroutine. Methods
// that talk to JetStream block and are documented so: call them from the
// worker pool (Go), never from an event loop. Publish, Broker.Publish,
// Direct, Ensure and the Watcher hooks never block: they queue.
package cluster

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"partyline/backplane"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Header names on every cross-node message.
const (
	HdrOrigin = "Pl-Origin" // node id of the publisher
	HdrDrop   = "Pl-Drop"   // "1": droppable under backpressure
	HdrKind   = "Pl-Kind"   // directed messages: what the receiver should do
)

// Config configures a Node. Zero values mean the defaults.
type Config struct {
	URL     string        // NATS server URL(s), comma separated
	NodeID  string        // this node's name; unique in the cluster
	Lease   time.Duration // a node silent this long is dead (default 15s)
	Workers int           // goroutines for blocking cluster work (default 32)
	Queue   int           // cluster work waiting for a worker (default 8192)
	// CleanupQueue bounds the clean-ups waiting (Cleanup): past it, Go
	// refuses new work until they are done (default 65536).
	CleanupQueue int
	Logger       *slog.Logger
}

// Node is this process's membership of the cluster.
type Node struct {
	cfg Config
	id  string
	log *slog.Logger

	startOnce sync.Once
	startErr  error
	stopped   atomic.Bool

	nc      *nats.Conn
	js      jetstream.JetStream
	buckets map[string]jetstream.KeyValue

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	work    chan func()
	pub     *publisher
	subs    *subs
	live    *liveness
	census  *censusWriter
	cleanup *cleanups
	drops   drops

	hdrOrigin nats.Header // {Pl-Origin: id}, shared read-only
	hdrDrop   nats.Header // {Pl-Origin: id, Pl-Drop: 1}

	mu      sync.Mutex                       // guards the following
	direct  map[string]func(backplane.Msg)   // Pl-Kind -> handler
	onDead  []func(Gone) error               // dead-node reapers
	onFence []func()                         // see OnFenced
	brokers map[string]*Broker               // by namespace
	allSubs map[string]func(m backplane.Msg) // "all" subjects by namespace
	logs    []*RoomLog                       // room logs (RoomLog), started with the node
}

// Msg is a message from another node.
type Msg = nats.Msg

// Bucket names.
const (
	BucketParty  = "pl_party"
	BucketCensus = "pl_census"
	BucketNames  = "pl_names"
	BucketNodes  = "pl_nodes"
	BucketFence  = "pl_fence"
)

// New returns a node that is not connected yet: dialects attach their
// hubs at construction, and the first Start connects.
func New(cfg Config) *Node {
	if cfg.Lease <= 0 {
		cfg.Lease = 15 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 32
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 8192
	}
	if cfg.CleanupQueue <= 0 {
		cfg.CleanupQueue = 1 << 16
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	n := &Node{cfg: cfg, id: cfg.NodeID, log: cfg.Logger.With("node", cfg.NodeID),
		direct: map[string]func(backplane.Msg){}, brokers: map[string]*Broker{}, allSubs: map[string]func(backplane.Msg){},
		work: make(chan func(), cfg.Queue)}
	n.hdrOrigin = nats.Header{HdrOrigin: {n.id}}
	n.hdrDrop = nats.Header{HdrOrigin: {n.id}, HdrDrop: {"1"}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.subs = newSubs(n)
	n.pub = newPublisher(n, 1<<16)
	n.census = newCensusWriter(n)
	n.cleanup = newCleanups(n, cfg.CleanupQueue)
	n.drops.n = n
	n.live = newLiveness(n)
	return n
}

// ID is the node's name.
func (n *Node) ID() string { return n.id }

// Logger is the node's logger (for the dialects' cluster-side warnings).
func (n *Node) Logger() *slog.Logger { return n.log }

// Lease is how long a silent node stays alive.
func (n *Node) Lease() time.Duration { return n.cfg.Lease }

// Start connects to NATS, creates the buckets and starts the node's
// goroutines. Every dialect that uses the node calls it; the first call
// does the work and later calls return its result. Blocks.
func (n *Node) Start() error {
	n.startOnce.Do(func() { n.startErr = n.start() })
	return n.startErr
}

func (n *Node) start() error {
	if n.id == "" {
		return errors.New("cluster: a node id is required")
	}
	nc, err := nats.Connect(n.cfg.URL,
		nats.Name("partyline "+n.id),
		nats.NoEcho(), // the server never sends us our own publications
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectBufSize(64<<20),
		nats.Timeout(5*time.Second),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			n.live.disconnected()
			if !n.stopped.Load() {
				n.log.Warn("cluster: disconnected from NATS", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			n.live.reconnected()
			n.log.Info("cluster: reconnected to NATS", "url", c.ConnectedUrl())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, s *nats.Subscription, err error) {
			if errors.Is(err, nats.ErrSlowConsumer) {
				n.drops.slowConsumer(s) // counted, logged once per interval
				return
			}
			if s != nil {
				n.log.Warn("cluster: subscription error", "subject", s.Subject, "err", err)
			} else {
				n.log.Warn("cluster: NATS error", "err", err)
			}
		}),
	)
	if err != nil {
		return fmt.Errorf("cluster: connect to NATS %s: %w", n.cfg.URL, err)
	}
	n.nc = nc
	if err := checkServer(nc); err != nil {
		n.stopped.Store(true) // no "disconnected" warning: the refusal is the one line
		nc.Close()
		return err
	}
	if n.js, err = jetstream.New(nc); err != nil {
		nc.Close()
		return fmt.Errorf("cluster: JetStream: %w", err)
	}
	ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
	_, err = n.js.AccountInfo(ctx)
	cancel()
	if err != nil {
		n.stopped.Store(true)
		nc.Close()
		return fmt.Errorf("cluster: JetStream is not available on the NATS server at %s (start nats-server with -js): %w", nc.ConnectedUrlRedacted(), err)
	}
	n.buckets = map[string]jetstream.KeyValue{}
	for _, b := range []jetstream.KeyValueConfig{
		{Bucket: BucketParty, Description: "partyline party rooms and retained state", Storage: jetstream.FileStorage},
		{Bucket: BucketCensus, Description: "partyline connection counts per node", Storage: jetstream.FileStorage},
		{Bucket: BucketNames, Description: "partyline claimed names", Storage: jetstream.FileStorage},
		{Bucket: BucketNodes, Description: "partyline node leases", Storage: jetstream.FileStorage, TTL: 4 * n.cfg.Lease},
		{Bucket: BucketFence, Description: "partyline nodes reaped by another node", Storage: jetstream.FileStorage},
	} {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		kv, err := n.js.CreateOrUpdateKeyValue(ctx, b)
		cancel()
		if err != nil {
			nc.Close()
			return fmt.Errorf("cluster: key-value bucket %s (is JetStream enabled on the NATS server?): %w", b.Bucket, err)
		}
		n.buckets[b.Bucket] = kv
	}
	for _, l := range n.logs {
		ctx, cancel := context.WithTimeout(n.ctx, 10*time.Second)
		err := l.start(ctx)
		cancel()
		if err != nil {
			nc.Close()
			return err
		}
	}
	for i := 0; i < n.cfg.Workers; i++ {
		n.wg.Add(1)
		go n.worker()
	}
	if err := n.subs.start(); err != nil {
		n.stop()
		return err
	}
	n.pub.start()
	if err := n.census.start(); err != nil {
		n.stop()
		return fmt.Errorf("cluster: census bucket: %w", err)
	}
	n.cleanup.start()
	n.wg.Add(1)
	go n.drops.run()
	if err := n.live.start(); err != nil {
		n.stop()
		return err
	}
	n.log.Info("cluster: joined", "nats", nc.ConnectedUrl(), "lease", n.cfg.Lease)
	return nil
}

// Stop leaves the cluster once every Start has been matched: it waits
// (a few seconds at most) for queued cluster work, gives up the lease so
// that the others clean up at once, and closes the connection.
func (n *Node) Stop() error {
	if n.startErr != nil || n.nc == nil {
		return nil
	}
	n.stop()
	return nil
}

func (n *Node) stop() {
	if !n.stopped.CompareAndSwap(false, true) {
		return
	}
	// Let queued work (membership removals of closed connections) finish.
	deadline := time.Now().Add(5 * time.Second)
	for len(n.work) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	n.cleanup.drain(time.Until(deadline))
	n.census.drain(time.Until(deadline))
	for _, l := range n.logs {
		l.stop()
	}
	n.live.leave()
	n.pub.stop()
	n.cancel()
	close(n.work)
	n.wg.Wait()
	n.cleanup.abandon()
	_ = n.nc.FlushTimeout(time.Second)
	n.nc.Close()
}

// Go runs fn on the cluster worker pool and reports false when the queue
// is full, or more clean-ups wait than Config.CleanupQueue (the caller
// answers "busy"). Never blocks.
func (n *Node) Go(fn func()) bool {
	if n.stopped.Load() || n.cleanup.full() {
		return false
	}
	select {
	case n.work <- fn:
		return true
	default:
		return false
	}
}

func (n *Node) worker() {
	defer n.wg.Done()
	for fn := range n.work {
		fn()
	}
}

// KV returns one of the node's buckets (BucketParty...). Valid after Start.
func (n *Node) KV(bucket string) jetstream.KeyValue { return n.buckets[bucket] }

// Ctx returns a context for one blocking cluster call (5 s).
func (n *Node) Ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(n.ctx, 5*time.Second)
}

// Token encodes an arbitrary non-empty string as one subject token and key
// segment ([A-Za-z0-9_-]).
func Token(s string) string {
	if s == "" {
		return "-"
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// Untoken reverses Token.
func Untoken(t string) (string, bool) {
	if t == "-" {
		return "", true
	}
	b, err := base64.RawURLEncoding.DecodeString(t)
	return string(b), err == nil
}

// Conflict reports whether err is a failed revision check (the key
// changed, or exists on create): re-read and retry.
func Conflict(err error) bool { return errors.Is(err, jetstream.ErrKeyExists) }

// NotFound reports whether err says the key does not exist.
func NotFound(err error) bool { return errors.Is(err, jetstream.ErrKeyNotFound) }

// Origin is the node that published m ("" if unknown).
func Origin(m *Msg) string { return m.Header.Get(HdrOrigin) }

// OnNodeDead registers fn to run (on a cluster goroutine; it may block)
// when another node's lease expires and this node is the one that cleans
// up after it: fn removes every entry g.Holds. At Start it also runs for
// what a crashed earlier run of this node id left and for the entries of
// nodes without a lease (see Gone). fn does all it can and returns the
// first error that left something in place (not a lost revision check or
// a missing key: someone else changed that entry); it is then run again on
// the clean-up queue (Cleanup) until it succeeds, so it must re-read and
// re-check g.Holds. Call before Start.
func (n *Node) OnNodeDead(fn func(g Gone) error) {
	n.mu.Lock()
	n.onDead = append(n.onDead, fn)
	n.mu.Unlock()
}

// OnFenced registers fn to run (on a cluster goroutine) when this node
// learns that another node took it for dead and removed what it held: it
// was cut off from NATS longer than the lease while the others were not.
// Its connections' shared state is gone, so the server closes them (the
// clients reconnect and join again). Call before Start.
func (n *Node) OnFenced(fn func()) {
	n.mu.Lock()
	n.onFence = append(n.onFence, fn)
	n.mu.Unlock()
}

// Alive reports the nodes whose lease is current, this one included.
func (n *Node) Alive() []string { return n.live.alive() }

// MinServerVersion is the oldest nats-server cluster mode works with: it
// uses consumers with several filter subjects, deliver-last-per-subject
// watches without a filter and other JetStream features of 2.10.
const MinServerVersion = "2.10.0"

// checkServer refuses a NATS server older than MinServerVersion: with one
// a cluster would start, say "ready", and run half broken.
func checkServer(nc *nats.Conn) error {
	v := nc.ConnectedServerVersion()
	if !versionAtLeast(v, MinServerVersion) {
		return fmt.Errorf("cluster: the NATS server at %s is version %s; partyline needs nats-server %s or later with JetStream (-js)", nc.ConnectedUrlRedacted(), v, MinServerVersion)
	}
	return nil
}

// versionAtLeast compares dotted versions ("2.9.10" < "2.10.0"); a
// pre-release or build suffix of the patch number is ignored.
func versionAtLeast(v, min string) bool {
	a, b := strings.Split(v, "."), strings.Split(min, ".")
	for i := range b {
		if i >= len(a) {
			return false
		}
		x, err := strconv.Atoi(strings.TrimLeftFunc(strings.SplitN(strings.SplitN(a[i], "-", 2)[0], "+", 2)[0], func(r rune) bool { return r == 'v' }))
		if err != nil {
			return false
		}
		y, _ := strconv.Atoi(b[i])
		if x != y {
			return x > y
		}
	}
	return true
}
