package routing

// Broker carries room traffic. Dialects publish through it instead of
// calling Room.Broadcast, so a cluster backplane can forward the same frame
// to other nodes' members of the room. The in-process default delivers to
// local members only.
type Broker interface {
	// Publish delivers f to the members of r (except the member whose Conn
	// is except) and returns how many local members it was queued for.
	Publish(r *Room, f *Frame, except Sender, droppable bool) int
}

// LocalBroker is the single-node Broker: local fan-out only.
type LocalBroker struct{}

// Publish implements Broker.
func (LocalBroker) Publish(r *Room, f *Frame, except Sender, droppable bool) int {
	return r.Broadcast(f, except, droppable)
}
