package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"partyline/bench/internal/dialect"
	"partyline/bench/internal/scenario"
	"partyline/bench/internal/stats"
	gorillapeer "partyline/bench/peers/gorilla/peer"
	gwspeer "partyline/bench/peers/gws/peer"
)

// Short runs of the generator against the peers, started in this process
// on 127.0.0.1:0. They check accounting (everything sent is delivered,
// nothing lost or duplicated), never performance.

func gorillaServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(gorillapeer.Handler(gorillapeer.Config{MaxClients: 2000}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func gwsServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := gwspeer.New(gwspeer.Config{MaxClients: 2000})
	go func() { _ = s.Serve(ln) }()
	t.Cleanup(s.Close)
	return ln.Addr().String()
}

func baseConfig(addr, name string) *scenario.Config {
	return &scenario.Config{
		Scenario: name, Addr: addr, Dialect: dialect.Party{}, RunID: "t" + name,
		Conns: 60, RoomSize: 6, Rate: 20, SizeMin: 100, SizeMax: 200,
		RampRate: 2000, DialConc: 16, Loops: 2, Duration: 700 * time.Millisecond,
		Drain: 3 * time.Second, Timeout: 60 * time.Second,
	}
}

func run(t *testing.T, cfg *scenario.Config) *stats.Report {
	t.Helper()
	rep, err := scenario.Run(context.Background(), cfg)
	if err != nil {
		if rep != nil {
			t.Logf("notes %v closes %v totals %+v", rep.Notes, rep.Closes, rep.Total)
		}
		t.Fatalf("%s: %v", cfg.Scenario, err)
	}
	return rep
}

// checkDelivery asserts that the window delivered exactly what was sent;
// perSend > 0 also checks the receivers counted per message.
func checkDelivery(t *testing.T, rep *stats.Report, perSend int64) {
	t.Helper()
	c := rep.Counts
	if c.Sent == 0 {
		t.Fatalf("nothing sent: %+v", c)
	}
	if perSend > 0 && c.Expected != c.Sent*perSend {
		t.Errorf("expected %d deliveries for %d sends, want %d", c.Expected, c.Sent, c.Sent*perSend)
	}
	if c.Delivered != c.Expected || c.Lost != 0 || c.Extra != 0 {
		t.Errorf("delivered %d of %d (lost %d, extra %d)", c.Delivered, c.Expected, c.Lost, c.Extra)
	}
	if c.Reordered != 0 || c.Unparsed != 0 || c.ErrorReplies != 0 || c.Closed != 0 {
		t.Errorf("reordered %d, unparsed %d, error replies %d, closed %d", c.Reordered, c.Unparsed, c.ErrorReplies, c.Closed)
	}
	if rep.Latency.N != c.Delivered {
		t.Errorf("latency histogram has %d values for %d deliveries", rep.Latency.N, c.Delivered)
	}
}

func TestRoomsGorilla(t *testing.T) {
	cfg := baseConfig(gorillaServer(t), "rooms")
	rep := run(t, cfg)
	if rep.Total.Opened != 60 || rep.Total.Created != 10 || rep.Total.Joined != 50 {
		t.Fatalf("setup: %+v", rep.Total)
	}
	checkDelivery(t, rep, 5)
}

func TestRoomsGWS(t *testing.T) {
	rep := run(t, baseConfig(gwsServer(t), "rooms"))
	checkDelivery(t, rep, 5)
}

func TestDirect(t *testing.T) {
	rep := run(t, baseConfig(gorillaServer(t), "direct"))
	checkDelivery(t, rep, 1)
}

func TestBigroom(t *testing.T) {
	cfg := baseConfig(gorillaServer(t), "bigroom")
	cfg.Conns, cfg.Senders, cfg.Rate = 50, 5, 50
	rep := run(t, cfg)
	checkDelivery(t, rep, 49)
	if rep.Completion == nil || rep.Completion.N != rep.Counts.Sent {
		t.Fatalf("completion: %+v for %d sends", rep.Completion, rep.Counts.Sent)
	}
}

func TestFindMax(t *testing.T) {
	cfg := baseConfig(gorillaServer(t), "rooms")
	cfg.FindMax, cfg.StepDur, cfg.MaxSteps, cfg.RateMult = true, 300*time.Millisecond, 2, 2
	rep := run(t, cfg)
	if len(rep.Steps) == 0 || len(rep.Steps) > 2 {
		t.Fatalf("%d steps", len(rep.Steps))
	}
	for _, s := range rep.Steps {
		if s.Counts.Sent == 0 {
			t.Errorf("step at %v sent nothing", s.Rate)
		}
	}
}

func TestIdle(t *testing.T) {
	cfg := baseConfig(gorillaServer(t), "idle")
	cfg.Conns, cfg.Duration = 100, 200*time.Millisecond
	rep := run(t, cfg)
	if rep.Total.Opened != 100 || rep.Handshake.N != 100 || rep.Total.Closed != 0 {
		t.Fatalf("opened %d, handshakes %d, closed %d", rep.Total.Opened, rep.Handshake.N, rep.Total.Closed)
	}
}

func TestChurn(t *testing.T) {
	cfg := baseConfig(gorillaServer(t), "churn")
	cfg.StableRooms, cfg.StableSize, cfg.Conns, cfg.RoomSize = 4, 3, 12, 3
	cfg.Rate, cfg.Dwell, cfg.AbruptFrac, cfg.MaxClients = 40, 100*time.Millisecond, 0.5, -1
	rep := run(t, cfg)
	x := rep.Extra
	if rep.Counts.Cycles == 0 || x["churn_failures"].(int64) != 0 {
		t.Fatalf("cycles %d, extra %v", rep.Counts.Cycles, x)
	}
	if x["peer_joined_got"] != x["peer_joined_expected"] || x["peer_left_got"] != x["peer_left_expected"] {
		t.Fatalf("peer events: %v", x)
	}
}

func TestHostile(t *testing.T) {
	cfg := baseConfig(gorillaServer(t), "hostile")
	cfg.Conns, cfg.RoomSize, cfg.SlowFrac, cfg.SlowRcvBuf = 100, 10, 0.02, 4096
	cfg.Dribblers, cfg.DribbleEvery, cfg.Oversize, cfg.OversizeLen = 1, time.Millisecond, 1, 1<<20
	cfg.Flooders, cfg.FloodRate = 1, 500
	rep := run(t, cfg)
	checkDelivery(t, rep, 0) // two rooms give a seat to a slow reader: 8 or 9 receivers
	x := rep.Extra
	if x["slow_joined"].(int64) != 2 || x["oversize_attempts"].(int64) == 0 {
		t.Fatalf("hostile clients: %v", x)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:1": true, "localhost:1": true, "[::1]:1": true, "10.0.0.1:1": false, "8.8.8.8:53": false} {
		if err := checkLoopback(addr); (err == nil) != ok {
			t.Errorf("checkLoopback(%s) = %v", addr, err)
		}
	}
}

var _ http.Handler = gorillapeer.Handler(gorillapeer.Config{})

// TestSpreadOverAddrs: rooms whose members connect to two servers that
// share one hub (as the nodes of a cluster share rooms) still deliver
// everything.
func TestSpreadOverAddrs(t *testing.T) {
	h := gorillapeer.Handler(gorillapeer.Config{MaxClients: 2000})
	var na, nb atomic.Int64
	count := func(n *atomic.Int64) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1); h.ServeHTTP(w, r) })
	}
	a, b := httptest.NewServer(count(&na)), httptest.NewServer(count(&nb))
	t.Cleanup(a.Close)
	t.Cleanup(b.Close)
	cfg := baseConfig(strings.TrimPrefix(a.URL, "http://"), "rooms")
	cfg.Addrs = []string{cfg.Addr, strings.TrimPrefix(b.URL, "http://")}
	rep := run(t, cfg)
	checkDelivery(t, rep, 5)
	if na.Load() != 30 || nb.Load() != 30 {
		t.Fatalf("connections per server: %d and %d, want 30 each", na.Load(), nb.Load())
	}
}

// storm: every join into the big room is announced to the members already
// there (n(n-1)/2 peer_joined), the probes get their rooms, and the small
// rooms lose nothing meanwhile.
func TestStorm(t *testing.T) {
	cfg := baseConfig(gorillaServer(t), "storm")
	cfg.StormJoins, cfg.StormRate, cfg.ProbeRate, cfg.Duration = 60, 200, 40, time.Second
	rep := run(t, cfg)
	checkDelivery(t, rep, 5)
	x := rep.Extra
	if x["storm_joins"].(int64) != 60 || x["storm_failed"].(int64) != 0 {
		t.Fatalf("storm joins: %v", x)
	}
	if got, want := x["storm_peer_joined_got"].(int64), int64(60*59/2); got != want {
		t.Fatalf("storm peer_joined %d, want %d", got, want)
	}
	if _, ok := x["storm_announced_s"]; !ok {
		t.Fatalf("no storm completion time: %v", x)
	}
	if p := x["probes"].(int64); p == 0 || x["probe_failures"].(int64) != 0 || rep.SetupLat.N == 0 {
		t.Fatalf("probes %d, failures %v, probe latencies %d", p, x["probe_failures"], rep.SetupLat.N)
	}
}
