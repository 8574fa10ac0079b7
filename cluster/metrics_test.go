package cluster_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"
	"time"

	"partyline/cluster"
	"partyline/internal/testutil"
)

// metric reads one sample of /metrics (0 and false if absent).
func metric(t testing.TB, url, name string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + `\{[^}]*\} (\S+)$`).FindSubmatch(b)
	if m == nil {
		return 0, false
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v, true
}

// /metrics carries the cluster's counters with the node label: NATS
// connection, nodes alive, publications out, messages in, subscriptions.
func TestClusterMetrics(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)
	ma, mb := testutil.HTTPURL(a, "/metrics"), testutil.HTTPURL(b, "/metrics")
	if v, ok := metric(t, ma, "partyline_cluster_nats_connected"); !ok || v != 1 {
		t.Fatalf("nats_connected %v %v", v, ok)
	}
	await(t, 10*time.Second, "both nodes alive", func() bool {
		v, _ := metric(t, ma, "partyline_cluster_nodes_alive")
		return v == 2
	})
	ca, cb, _ := aliceAndBob(t, a, b) // bob's peer_joined goes from B to A
	ca.Send(M{"type": "send", "data": "x"})
	cb.Expect("message")
	if v, _ := metric(t, mb, "partyline_cluster_published_total"); v < 1 {
		t.Fatalf("published_total on B = %v", v)
	}
	if v, _ := metric(t, ma, "partyline_cluster_received_total"); v < 1 {
		t.Fatalf("received_total on A = %v", v)
	}
	if v, ok := metric(t, ma, "partyline_cluster_room_log_dropped_total"); !ok || v != 0 {
		t.Fatalf("room_log_dropped_total on A = %v %v", v, ok)
	}
	if v, _ := metric(t, mb, "partyline_cluster_subscriptions"); v < 1 {
		t.Fatalf("subscriptions on B = %v", v)
	}
	if _, ok := metric(t, ma, "partyline_cluster_publish_dropped_total"); !ok {
		t.Fatal("publish_dropped_total missing")
	}
	resp, err := http.Get(ma)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, reason := range cluster.DropReasons {
		re := regexp.MustCompile(`(?m)^partyline_cluster_dropped_total\{[^}]*reason="` + reason + `"[^}]*\} 0$`)
		if !re.Match(body) {
			t.Fatalf("no partyline_cluster_dropped_total{reason=%q} 0 in /metrics", reason)
		}
	}
	if v, ok := metric(t, ma, "partyline_cluster_cleanup_queue"); !ok || v != 0 {
		t.Fatalf("cleanup_queue = %v %v", v, ok)
	}
}
