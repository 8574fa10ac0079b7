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
