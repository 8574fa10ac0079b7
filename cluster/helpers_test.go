package cluster_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	natsd "github.com/nats-io/nats-server/v2/server"

	"partyline/cluster"
	"partyline/internal/testutil"
	"partyline/server"
)

// natsServer is a NATS server for a test: an embedded one with JetStream
// in a temporary directory, or the one at $NATS_URL.
type natsServer struct {
	t    testing.TB
	url  string
	ns   *natsd.Server // nil for $NATS_URL
	dir  string
	port int
}

func startNATS(t testing.TB) *natsServer {
	t.Helper()
	if u := os.Getenv("NATS_URL"); u != "" {
		return &natsServer{t: t, url: u}
	}
	s := &natsServer{t: t, dir: t.TempDir(), port: -1}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start runs the embedded server (again: same port, same store).
func (s *natsServer) start() {
	s.t.Helper()
	ns := cluster.RunEmbeddedNATS(s.t, s.dir, s.port)
	s.ns, s.url = ns, ns.ClientURL()
	s.port = ns.Addr().(*net.TCPAddr).Port
}

func (s *natsServer) stop() {
	if s.ns != nil {
		s.ns.Shutdown()
		s.ns.WaitForShutdown()
		s.ns = nil
	}
}

// embedded skips tests that must stop and start the NATS server.
func (s *natsServer) embedded(t testing.TB) {
	if s.ns == nil && s.dir == "" {
		t.Skip("NATS_URL is set: this test restarts an embedded NATS server")
	}
}

var runID = func() string {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

// node starts an in-process partyline node of the cluster at url.
func node(t testing.TB, url, name string, mutate func(*server.Config)) *server.Server {
	t.Helper()
	return testutil.Start(t, func(c *server.Config) {
		c.NATSURL = url
		c.NodeID = runID + "-" + t.Name() + "-" + name
		c.NodeLease = 2 * time.Second
		if mutate != nil {
			mutate(c)
		}
	})
}

func getJSON(t testing.TB, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// await polls cond every 10 ms until it holds or d passes.
func await(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
