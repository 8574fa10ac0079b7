package cluster_test

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"partyline/cluster"
	"partyline/internal/testutil"
	"partyline/server"
)

func freePort(t testing.TB) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startVictim builds the binary and runs it as node id of the cluster at
// nsURL (lease 2 s, its own data dir, extra flags); it returns the process
// (killed at cleanup) and its ws://host:port base URL. Skipped in -short.
func startVictim(t *testing.T, nsURL, id string, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "partyline")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	port := freePort(t)
	args := append([]string{"--listen", "127.0.0.1:" + strconv.Itoa(port), "--http", "",
		"--nats", nsURL, "--node-id", id, "--node-lease", "2s", "--data-dir", t.TempDir()}, extra...)
	victim := exec.Command(bin, args...)
	victim.Stderr = os.Stderr
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = victim.Process.Kill(); _ = victim.Wait() })
	return victim, "ws://127.0.0.1:" + strconv.Itoa(port)
}

// A node killed with SIGKILL leaves no one to remove its members: after
// its lease the lowest live node does, and the room hears peer_left.
func TestNodeKilled(t *testing.T) {
	ns := startNATS(t)
	victim, a, ca, code := victimRoom(t, ns, runID+"-victim", 2)
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	m, err := ca.TryRead(15 * time.Second)
	if err != nil || m.Str("type") != "peer_left" || m.Str("clientId") != "bob" {
		t.Fatalf("after the kill: %v %v", m, err)
	}
	t.Logf("peer_left %v after SIGKILL (lease 2s)", time.Since(start).Round(time.Millisecond))
	// The reaper left the victim a fence mark, for if it was only cut off.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := fenceKV(t, ns.url).Get(ctx, cluster.Token(runID+"-victim")); err != nil {
		t.Fatalf("fence mark of the killed node: %v", err)
	}
	// The room has room again: capacity 2 was freed cluster-wide.
	cc := party(t, a)
	joinRoom(t, cc, "carol", code)
}

// The NATS server goes away and comes back (same port, same store): the
// nodes reconnect, traffic flows again and the registry still knows the
// room.
func TestNATSRestart(t *testing.T) {
	ns := startNATS(t)
	ns.embedded(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)
	ca, cb, code := aliceAndBob(t, a, b)

	ns.stop()
	ns.start()

	// Messages flow again (nats.go resends subscriptions on reconnect).
	bobs := reader(cb)
	await(t, 20*time.Second, "traffic after the restart", func() bool {
		ca.Send(M{"type": "send", "data": "ping"})
		select {
		case m := <-bobs:
			return m.Str("type") == "message"
		case <-time.After(200 * time.Millisecond):
			return false
		}
	})
	// The registry survived: a join on B sees both members (JetStream may
	// need a moment after the restart: an error reply is retried).
	cc := party(t, b)
	var joined testutil.Msg
	await(t, 20*time.Second, "join after the restart", func() bool {
		cc.Send(M{"type": "join", "clientId": "carol", "room": code})
		m := cc.Read()
		if m.Str("type") == "joined" {
			joined = m
			return true
		}
		return false
	})
	if got := clients(joined); len(got) != 3 || got[0] != "alice" || got[1] != "bob" {
		t.Fatalf("joined after restart: %v", got)
	}
	for {
		m := ca.Read()
		if m.Str("type") == "peer_joined" {
			break
		}
	}
}

// reader reads c on a goroutine (a gorilla connection cannot be read
// again after a read timeout) until it fails.
func reader(c *testutil.Client) <-chan testutil.Msg {
	ch := make(chan testutil.Msg, 1024)
	go func() {
		defer close(ch)
		for {
			m, err := c.TryRead(time.Minute)
			if err != nil {
				return
			}
			ch <- m
		}
	}()
	return ch
}

// fenceKV opens the fence bucket on the test's NATS server.
func fenceKV(t testing.TB, url string) jetstream.KeyValue {
	return bucketKV(t, url, cluster.BucketFence)
}

// A node that learns it was taken for dead (the fence mark a reaper
// writes: it was cut off from NATS longer than the lease while the others
// were not) closes its connections with 1012, since their shared state is
// gone; connections made afterwards work.
func TestNodeFenced(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)
	ca, cb, code := aliceAndBob(t, a, b)

	kv := fenceKV(t, ns.url)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := kv.Put(ctx, cluster.Token(runID+"-"+t.Name()+"-a"), []byte("test")); err != nil {
		t.Fatal(err)
	}
	ca.ExpectClose(1012)
	// B was not fenced; A serves new connections (the mark is consumed).
	cb.Send(M{"type": "send", "data": "still here"})
	await(t, 5*time.Second, "mark consumed", func() bool {
		_, err := kv.Get(ctx, cluster.Token(runID+"-"+t.Name()+"-a"))
		return cluster.NotFound(err)
	})
	c2 := party(t, a)
	joinRoom(t, c2, "alice2", code)
	// bob hears alice leave (her socket was closed) and alice2 join, in
	// either order: both go through the registry from node A's workers.
	got := map[string]string{}
	for range 2 {
		m := cb.Read()
		got[m.Str("type")] = m.Str("clientId")
	}
	if got["peer_left"] != "alice" || got["peer_joined"] != "alice2" {
		t.Fatalf("bob got %v, want alice's peer_left and alice2's peer_joined", got)
	}
}

// Members who leave while NATS is down are removed from the room's record
// once it is back: the removals wait on the node's clean-up queue (retried
// with back-off) instead of failing once and staying in the registry.
func TestPartyLeavesDuringOutage(t *testing.T) {
	ns := startNATS(t)
	ns.embedded(t)
	a := node(t, ns.url, "a", nil)
	ca := party(t, a)
	code, _ := createRoom(t, ca, "alice", 0)
	var gone []*testutil.Client
	for _, id := range []string{"bob", "carol", "dave"} {
		c := party(t, a)
		joinRoom(t, c, id, code)
		gone = append(gone, c)
	}

	ns.stop()
	for _, c := range gone {
		c.Conn.Close()
	}
	await(t, 10*time.Second, "removals queued", func() bool {
		v, _ := metric(t, testutil.HTTPURL(a, "/metrics"), "partyline_cluster_cleanup_queue")
		return v >= 3
	})
	ns.start()

	kv := bucketKV(t, ns.url, cluster.BucketParty)
	await(t, 30*time.Second, "the record holds alice only", func() bool { return recordHolds(t, kv, code, "alice") })
	awaitCleanups(t, a)
}

// recordHolds reports whether party room code's record (in kv) has the
// members ids, in order.
func recordHolds(t testing.TB, kv jetstream.KeyValue, code string, ids ...string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := kv.Get(ctx, "room."+code)
	if err != nil {
		return false
	}
	var rec struct{ Members []struct{ C string } }
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(rec.Members))
	for i, x := range rec.Members {
		got[i] = x.C
	}
	return slices.Equal(got, ids)
}

// awaitCleanups waits until node s has no clean-up left.
func awaitCleanups(t testing.TB, s *server.Server) {
	t.Helper()
	await(t, 10*time.Second, "clean-up queue empty", func() bool {
		v, ok := metric(t, testutil.HTTPURL(s, "/metrics"), "partyline_cluster_cleanup_queue")
		return ok && v == 0
	})
}

// natsJS connects to the test's NATS server (closed at cleanup).
func natsJS(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// bucketKV opens a bucket on the test's NATS server.
func bucketKV(t testing.TB, url, bucket string) jetstream.KeyValue {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := natsJS(t, url).KeyValue(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	return kv
}

// victimRoom starts a victim node id (startVictim) and node a; alice on a
// creates a party room of max members (0: no limit) and bob joins it on
// the victim. It returns the victim process, a, alice and the room code.
func victimRoom(t *testing.T, ns *natsServer, id string, max int) (*exec.Cmd, *server.Server, *testutil.Client, string) {
	t.Helper()
	victim, base := startVictim(t, ns.url, id)
	var vc *testutil.Client
	await(t, 20*time.Second, "victim node accepting", func() bool {
		c, err := testutil.TryDial(t, base+"/party", nil)
		vc = c
		return err == nil
	})
	a := node(t, ns.url, "a", nil)
	ca := party(t, a)
	code, _ := createRoom(t, ca, "alice", max)
	joinRoom(t, vc, "bob", code)
	ca.Expect("peer_joined")
	return victim, a, ca, code
}

// A killed node's member stays in the room while the party bucket refuses
// writes (its message size limit is too small for any record): the reap
// fails, and is run again until the bucket takes writes, then the room
// hears peer_left and its record holds the live node's member only.
func TestPartyReapFailsThenDone(t *testing.T) {
	ns := startNATS(t)
	victim, a, ca, code := victimRoom(t, ns, runID+"-reapvictim", 0)
	restore := cluster.RefuseWrites(t, natsJS(t, ns.url), cluster.BucketParty)
	if err := victim.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	await(t, 20*time.Second, "the failed reap retried", func() bool {
		v, _ := metric(t, testutil.HTTPURL(a, "/metrics"), "partyline_cluster_cleanup_retries_total")
		return v > 0
	})
	kv := bucketKV(t, ns.url, cluster.BucketParty)
	if !recordHolds(t, kv, code, "alice", "bob") {
		t.Fatal("bob left the record while it refused writes")
	}
	restore()
	m, err := ca.TryRead(20 * time.Second)
	if err != nil || m.Str("type") != "peer_left" || m.Str("clientId") != "bob" {
		t.Fatalf("after the bucket takes writes again: %v %v", m, err)
	}
	if !recordHolds(t, kv, code, "alice") {
		t.Fatal("the room's record does not hold alice only")
	}
	awaitCleanups(t, a)
}
