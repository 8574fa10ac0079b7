package server

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"partyline/dialect"
	"partyline/internal/security"
)

// metrics are the engine's Prometheus collectors, on a registry of the
// server's own (several servers may live in one test process).
type metrics struct {
	reg           *prometheus.Registry
	conns         prometheus.Gauge
	accepted      prometheus.Counter
	handshakes    prometheus.Counter
	handshakeFail prometheus.Counter
	framesIn      prometheus.Counter
	bytesIn       prometheus.Counter
	framesOut     prometheus.Counter
	bytesOut      prometheus.Counter
	closes        *prometheus.CounterVec
	slow          prometheus.Counter
	dropped       prometheus.Counter
	rateLimited   prometheus.Counter
	fanout        prometheus.Counter
}

func newMetrics(node string, ds []dialect.Dialect) *metrics {
	reg := prometheus.NewRegistry()
	f := func(name, help string) prometheus.Opts {
		return prometheus.Opts{Namespace: "partyline", Name: name, Help: help,
			ConstLabels: prometheus.Labels{"node": node}}
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts(f(name, help)))
	}
	m := &metrics{
		reg:           reg,
		conns:         prometheus.NewGauge(prometheus.GaugeOpts(f("connections", "Open connections, handshaking included."))),
		accepted:      c("connections_accepted_total", "TCP connections accepted."),
		handshakes:    c("handshakes_total", "Successful WebSocket upgrades."),
		handshakeFail: c("handshake_failures_total", "Refused or malformed handshakes."),
		framesIn:      c("messages_in_total", "Data messages received from clients."),
		bytesIn:       c("bytes_in_total", "Payload bytes of data messages received."),
		framesOut:     c("messages_out_total", "Frames delivered to clients (one per recipient)."),
		bytesOut:      c("bytes_out_total", "Bytes written to clients."),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts(f("closes_total", "Connections closed, by reason.")),
			[]string{"reason"}),
		slow:    c("slow_consumer_closes_total", "Connections closed because they could not keep up."),
		dropped: c("dropped_frames_total", "Droppable frames shed under backpressure."),
		rateLimited: c("rate_limited_messages_total",
			"Inbound messages dropped by the per-connection rate limits (--max-messages-per-second, --max-bytes-per-second)."),
		fanout: c("fanout_deliveries_total",
			"Frames of big rooms' broadcasts queued to members by the members' own event loops (one per recipient)."),
	}
	reg.MustRegister(m.conns, m.accepted, m.handshakes, m.handshakeFail, m.framesIn, m.bytesIn,
		m.framesOut, m.bytesOut, m.closes, m.slow, m.dropped, m.rateLimited, m.fanout,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		security.Collector(node))
	for _, d := range ds {
		if st, ok := d.(dialect.Stats); ok {
			o := f("rooms", "Rooms (or channels, groups) that have members.")
			o.ConstLabels = prometheus.Labels{"node": node, "dialect": d.Name()}
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts(o), func() float64 { return float64(st.Rooms()) }))
		}
		if h, ok := d.(interface{ HistoryBytes() int64 }); ok {
			o := f("history_bytes", "Bytes of frames held in rooms' recovery history.")
			o.ConstLabels = prometheus.Labels{"node": node, "dialect": d.Name()}
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts(o), func() float64 { return float64(h.HistoryBytes()) }))
		}
		if h, ok := d.(interface{ StateBytes() int64 }); ok {
			o := f("state_bytes", "Bytes of retained room state counted against --max-state-bytes-total.")
			o.ConstLabels = prometheus.Labels{"node": node, "dialect": d.Name()}
			reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts(o), func() float64 { return float64(h.StateBytes()) }))
		}
	}
	return m
}

// engineGauges registers the gauges read from the server's atomics.
func (m *metrics) engineGauges(node string, s *Server) {
	g := func(name, help string, v func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "partyline", Name: name, Help: help,
			ConstLabels: prometheus.Labels{"node": node}}, v)
	}
	m.reg.MustRegister(
		g("pending_handshakes", "Connections that have not finished their handshake.",
			func() float64 { return float64(s.pending.Load()) }),
		g("outbound_bytes", "Outbound bytes queued or buffered for all connections (the --max-outbound-total budget's count).",
			func() float64 { return float64(s.outTotal.Load()) }),
		g("outbound_budget_bytes", "--max-outbound-total.",
			func() float64 { return float64(s.cfg.MaxOutboundTotal) }),
		g("http_connections", "Open connections on the HTTP listener (capped by --http-max-connections).",
			func() float64 { open, _ := s.HTTPConns(); return float64(open) }),
		g("http_connections_idle", "HTTP connections waiting for a request (the first to be closed at the cap).",
			func() float64 { _, idle := s.HTTPConns(); return float64(idle) }),
	)
}

// closeReason counts a close: engine reasons by name, dialect closes by code.
func (m *metrics) closeReason(code uint16, reason string) {
	label := reason
	switch {
	case code == 1008 && reason == "slow consumer":
		label = "slow_consumer"
	case code == 1001 && reason == "ping timeout":
		label = "ping_timeout"
	case code == 1008 && reason == "message timeout":
		label = "message_timeout"
	case code == 1008 && reason == "rate limit":
		label = "rate_limit"
	case code != 0:
		label = "code_" + strconv.Itoa(int(code))
	}
	m.closes.WithLabelValues(label).Inc()
}
