package cluster

// Metrics is a snapshot of the node's cluster counters for /metrics.
type Metrics struct {
	Connected     bool   // the NATS connection is up
	Reconnects    uint64 // NATS reconnections since start
	Published     int64  // publications handed to NATS
	Dropped       int64  // publications dropped because the queue was full
	Queued        int    // publications waiting for the publisher
	Received      int64  // room messages from other nodes delivered here
	Subscriptions int    // room and user subjects this node listens to
	NodesAlive    int    // nodes with a current lease, this one included
	WorkQueued    int    // blocking cluster calls waiting for a worker
	LogDropped    int64  // room log entries that never reached JetStream (RoomLog)

	DroppedBy      [len(DropReasons)]int64 // losses by reason (DropReasons)
	CleanupQueued  int                     // clean-ups not done yet (Cleanup)
	CleanupRetried int64                   // failed clean-up runs queued again
}

// Metrics returns the current counters. Safe from any goroutine; cheap
// (no I/O). Zero before Start.
func (n *Node) Metrics() Metrics {
	if n.nc == nil {
		return Metrics{}
	}
	st := n.nc.Stats()
	var logDropped int64
	n.mu.Lock()
	for _, l := range n.logs {
		logDropped += l.Dropped()
	}
	n.mu.Unlock()
	subs := 0
	n.subs.byKey.Range(func(any, any) bool { subs++; return true })
	var by [len(DropReasons)]int64
	for i := range by {
		by[i] = n.drops.counts[i].Load()
	}
	return Metrics{
		DroppedBy:      by,
		CleanupQueued:  n.cleanup.len(),
		CleanupRetried: n.cleanup.retried.Load(),
		Connected:      n.nc.IsConnected(),
		Reconnects:     st.Reconnects,
		Published:      n.pub.sent.Load(),
		Dropped:        n.pub.dropped.Load(),
		Queued:         len(n.pub.q),
		Received:       n.subs.received.Load(),
		Subscriptions:  subs,
		NodesAlive:     len(n.live.alive()),
		WorkQueued:     len(n.work),
		LogDropped:     logDropped,
	}
}
