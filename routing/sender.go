package routing

// Sender is the outbound side of one connection.
type Sender interface {
	// Send queues f for the connection; it takes its own reference, so the
	// caller keeps (and must release) its own. Droppable frames (typing
	// indicators and the like) are shed first when the connection falls
	// behind. Send reports false when the frame was not queued (connection
	// closed or shedding). Safe from any goroutine; never blocks.
	Send(f *Frame, droppable bool) bool
}

// Away is the Sender of a seat whose member is not connected: it takes
// nothing (a sequenced room's history keeps what was addressed to it).
var Away Sender = away{}

type away struct{}

func (away) Send(*Frame, bool) bool { return false }
