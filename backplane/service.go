package backplane

import "github.com/prometheus/client_golang/prometheus"

// Service is a backplane with the life cycle the server runs: Start
// before the dialects start, Stop after they shut down.
type Service interface {
	Node

	// Start connects to the other nodes; Stop leaves them. Start's error
	// names what is wrong (the server exits with it).
	Start() error
	Stop() error

	// OnFenced adds a call made when the other nodes took this node for
	// dead and removed its shared state: its connections must go (their
	// memberships are gone). Call before Start.
	OnFenced(fn func())

	// Collectors are the backplane's own metrics, labelled node.
	Collectors(node string) []prometheus.Collector
}

// Start implements Service: nothing to connect to.
func (l *Local) Start() error { return nil }

// Stop implements Service.
func (l *Local) Stop() error { return nil }

// OnFenced implements Service: a single node is never fenced.
func (l *Local) OnFenced(func()) {}

// Collectors implements Service: a single node has no backplane metrics
// of its own.
func (l *Local) Collectors(string) []prometheus.Collector { return nil }

var _ Service = (*Local)(nil)
