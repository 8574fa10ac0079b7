package cluster

import (
	"encoding/json"
	"fmt"
	"net"
	"partyline/backplane"
	"sync"
	"testing"
	"time"

	natsd "github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"partyline/routing"
)

// embedded is a NATS server with JetStream that a test can stop and
// start again (same port, same store).
type embedded struct {
	t    *testing.T
	dir  string
	port int
	s    *natsd.Server
}

func startEmbedded(t *testing.T) *embedded {
	e := &embedded{t: t, dir: t.TempDir(), port: -1}
	e.start()
	t.Cleanup(e.stop)
	return e
}

func (e *embedded) start() {
	e.t.Helper()
	e.s = RunEmbeddedNATS(e.t, e.dir, e.port)
	e.port = e.s.Addr().(*net.TCPAddr).Port
}

// RunEmbeddedNATS starts a NATS server with JetStream storing in dir, on
// port (-1: any free one), for the tests of this package and of
// cluster_test.
func RunEmbeddedNATS(t testing.TB, dir string, port int) *natsd.Server {
	t.Helper()
	s, err := natsd.NewServer(&natsd.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	return s
}

func (e *embedded) stop() {
	if e.s != nil {
		e.s.Shutdown()
		e.s.WaitForShutdown()
		e.s = nil
	}
}

func (e *embedded) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", e.port) }

// waitFor polls cond every 10 ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func startNode(t *testing.T, cfg Config) *Node {
	t.Helper()
	n := New(cfg)
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Stop() })
	return n
}

// TestCleanupSurvivesOutage fills a tiny clean-up queue while NATS is
// down: nothing is lost, new work is refused while it is over its bound,
// and once NATS is back every record ends as the clean-ups left it.
func TestCleanupSurvivesOutage(t *testing.T) {
	const bound, items = 3, 8
	e := startEmbedded(t)
	n := startNode(t, Config{URL: e.url(), NodeID: "cleanup", CleanupQueue: bound})
	kv := n.KV(BucketCensus)
	member := n.Member()
	// "other#x" is a live node's entry: its lease is kept fresh, or the
	// node would remove it as an orphan (or a dead node's) on its own.
	stopLease := make(chan struct{})
	leaseDone := make(chan struct{})
	t.Cleanup(func() { close(stopLease); <-leaseDone })
	renew := func() {
		ctx, cancel := n.Ctx()
		_, _ = n.KV(BucketNodes).Put(ctx, Token("other"), []byte("other#x"))
		cancel()
	}
	renew()
	go func() {
		defer close(leaseDone)
		tk := time.NewTicker(200 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stopLease:
				return
			case <-tk.C:
				renew()
			}
		}
	}()
	for i := 0; i < items; i++ {
		ctx, cancel := n.Ctx()
		b, _ := json.Marshal(map[string]int{member: 1, "other#x": 1})
		_, err := kv.Put(ctx, fmt.Sprintf("t.k%d", i), b)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}

	e.stop()
	waitFor(t, 10*time.Second, "disconnected", func() bool { return !n.nc.IsConnected() })
	for i := 0; i < items; i++ {
		key := fmt.Sprintf("t.k%d", i)
		n.Cleanup(func() error {
			_, _, err := update(n, BucketCensus, key, func(m map[string]int) (bool, error) {
				_, ok := m[member]
				delete(m, member)
				return ok, nil
			})
			return err
		})
	}
	if got := n.Metrics().CleanupQueued; got != items {
		t.Fatalf("queued %d clean-ups, want %d", got, items)
	}
	if n.Go(func() {}) {
		t.Fatal("Go accepted work with more clean-ups waiting than the bound")
	}
	waitFor(t, 20*time.Second, "a failed run retried", func() bool { return n.Metrics().CleanupRetried > 0 })

	e.start()
	waitFor(t, 60*time.Second, "clean-ups done", func() bool { return n.Metrics().CleanupQueued == 0 })
	for i := 0; i < items; i++ {
		ctx, cancel := n.Ctx()
		ent, err := kv.Get(ctx, fmt.Sprintf("t.k%d", i))
		cancel()
		if err != nil {
			t.Fatalf("k%d: %v", i, err)
		}
		var m map[string]int
		_ = json.Unmarshal(ent.Value(), &m)
		if len(m) != 1 || m["other#x"] != 1 {
			t.Fatalf("k%d = %v, want only the other node's entry", i, m)
		}
	}
	if !n.Go(func() {}) {
		t.Fatal("Go refused work with the clean-up queue empty")
	}
	if d := n.Metrics().DroppedBy; d != ([len(DropReasons)]int64{}) {
		t.Fatalf("dropped %v", d)
	}
}

// TestRoomQueueFullCounted: a node whose dispatchers cannot keep up loses
// room traffic; the loss is counted (reason room_queue_full) and the
// room's members are told (OnLost), never silent.
func TestRoomQueueFullCounted(t *testing.T) {
	e := startEmbedded(t)
	n := New(Config{URL: e.url(), NodeID: "slow"})
	for i := range n.subs.chans {
		n.subs.chans[i] = make(chan *nats.Msg, 4) // a tiny dispatch queue
	}
	hub := routing.NewHub()
	b := n.Broker("t", hub)
	release := make(chan struct{})
	var once sync.Once
	b.OnMessage = func(string, backplane.Msg) bool {
		<-release // a stuck dispatcher
		return true
	}
	var mu sync.Mutex
	lost := map[string]int{}
	b.OnLost = func(room string) {
		mu.Lock()
		lost[room]++
		mu.Unlock()
	}
	if err := n.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { once.Do(func() { close(release) }); _ = n.Stop() })

	ready := make(chan struct{})
	b.Ensure("lobby", func(func()) { close(ready) })
	<-ready
	pub, err := nats.Connect(e.url())
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close()
	const sent = 100
	for i := 0; i < sent; i++ {
		m := &nats.Msg{Subject: b.Subject("lobby"), Header: nats.Header{HdrOrigin: {"other"}}, Data: []byte("x")}
		if err := pub.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	if err := pub.Flush(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "drops counted", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return n.Metrics().DroppedBy[dropRoomQueue] > 0 && lost["lobby"] > 0
	})
	once.Do(func() { close(release) })
	// Every message is either dispatched or counted as dropped.
	waitFor(t, 10*time.Second, "every message accounted for", func() bool {
		n.subs.bySub.Range(func(_, v any) bool { n.subs.account(v.(*sub)); return true })
		return n.subs.received.Load()+n.Metrics().DroppedBy[dropRoomQueue] == sent
	})
}
