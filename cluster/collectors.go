package cluster

import "github.com/prometheus/client_golang/prometheus"

// Collectors implements backplane.Service: the node's counters, read at
// scrape time.
func (p plane) Collectors(node string) []prometheus.Collector {
	n := p.Node
	o := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "partyline", Subsystem: "cluster", Name: name, Help: help,
			ConstLabels: prometheus.Labels{"node": node}}
	}
	gauge := func(name, help string, v func(Metrics) float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts(o(name, help)), func() float64 { return v(n.Metrics()) })
	}
	counter := func(name, help string, v func(Metrics) float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts(o(name, help)), func() float64 { return v(n.Metrics()) })
	}
	b := func(v bool) float64 {
		if v {
			return 1
		}
		return 0
	}
	cs := []prometheus.Collector{
		gauge("nats_connected", "1 while the NATS connection is up.", func(x Metrics) float64 { return b(x.Connected) }),
		counter("nats_reconnects_total", "Reconnections to NATS.", func(x Metrics) float64 { return float64(x.Reconnects) }),
		counter("published_total", "Publications handed to NATS.", func(x Metrics) float64 { return float64(x.Published) }),
		counter("publish_dropped_total", "Publications dropped because the queue to NATS was full.", func(x Metrics) float64 { return float64(x.Dropped) }),
		counter("room_log_dropped_total", "Room log entries (party messages and states) that never reached JetStream; their senders were told.", func(x Metrics) float64 { return float64(x.LogDropped) }),
		gauge("publish_queue", "Publications waiting for the publisher.", func(x Metrics) float64 { return float64(x.Queued) }),
		counter("received_total", "Room messages from other nodes delivered here.", func(x Metrics) float64 { return float64(x.Received) }),
		gauge("subscriptions", "Room and user subjects this node listens to.", func(x Metrics) float64 { return float64(x.Subscriptions) }),
		gauge("nodes_alive", "Nodes with a current lease, this one included.", func(x Metrics) float64 { return float64(x.NodesAlive) }),
		gauge("work_queue", "Blocking cluster calls waiting for a worker.", func(x Metrics) float64 { return float64(x.WorkQueued) }),
		gauge("cleanup_queue", "Clean-ups of shared state (undone memberships, released names) not done yet; retried while NATS is unreachable.", func(x Metrics) float64 { return float64(x.CleanupQueued) }),
		counter("cleanup_retries_total", "Failed clean-up runs queued again.", func(x Metrics) float64 { return float64(x.CleanupRetried) }),
	}
	for i, reason := range DropReasons {
		opts := o("dropped_total", "Cluster traffic and clean-ups lost, by reason: room_queue_full (other nodes' room messages dropped because this node's dispatch queue was full; the rooms' members were told), slow_consumer (other messages NATS dropped for this node), cleanup_failed, cleanup_at_stop.")
		opts.ConstLabels = prometheus.Labels{"node": node, "reason": reason}
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts(opts), func() float64 { return float64(n.Metrics().DroppedBy[i]) }))
	}
	return cs
}
