package backplane

import "time"

// LogEntry is one entry of a room's log (RoomLog).
type LogEntry struct {
	Seq  uint64 // the log's sequence (0 when appending)
	At   int64  // unix nanos the log stored it (0 when appending)
	Ev   string // what it is: the dialect's vocabulary ("" for a message)
	From string // sender id ("" none)
	To   string // the one recipient ("" everyone but From)
	Rev  uint64 // a dialect-defined revision (0 none)
	Data []byte // payload; valid during the callback only
	Node string // the node that appended it (set by the log)
}

// RoomLogConfig configures a RoomLog.
type RoomLogConfig struct {
	Stream  string        // the log's name, unique per dialect, e.g. PL_PARTY
	Prefix  string        // the rooms' logs' name prefix, e.g. pl.ph
	PerRoom int64         // entries kept per room (at least 2)
	MaxAge  time.Duration // oldest entry kept (default 24h)
	Queue   int           // Append's queue (default 65536)
}

// RoomLog sequences the traffic of a dialect's rooms across nodes: each
// room (by its id) has a log whose sequence is the room's seq; every node
// with members in a room follows it and delivers its entries in log order,
// so every node sees one order and any node can rebuild the room's recent
// history from what the log keeps (PerRoom entries, none older than
// MaxAge). Safe from any goroutine.
type RoomLog interface {
	// Append queues e (its Data is handed over) for the room's log, after
	// this node's earlier entries. Never blocks; false when the queue is
	// full (the entry is dropped and OnLost is not called: the caller
	// knows).
	Append(room string, e LogEntry) bool
	// AppendThen is Append with stored, called (on a goroutine of its
	// own) with the entry's seq once the log has it.
	AppendThen(room string, e LogEntry, stored func(seq uint64)) bool
	// AppendSync appends e and returns its seq once the log has it.
	// Blocks.
	AppendSync(room string, e LogEntry) (uint64, error)
	// Follow delivers the room's log to fn, from the first entry the log
	// keeps, in order, on a goroutine of the follower's own (fn must not
	// block). It returns once following, with the seq of the room's
	// latest entry at that moment (0: none). Blocks.
	Follow(room string, fn func(LogEntry)) (Follower, uint64, error)
	// Last is the seq of the room's latest entry (0: none). Blocks.
	Last(room string) (uint64, error)
	// Purge deletes the room's log (the room is gone). Blocks.
	Purge(room string) error
	// SetOnLost sets the call made (on a log goroutine) with an entry
	// that was queued but never reached the log: the dialect tells its
	// sender. Set before the server starts.
	SetOnLost(fn func(room string, e LogEntry, reason string))
}

// Follower is one node's reader of one room's log (RoomLog.Follow).
type Follower interface {
	// Wait blocks until the follower has delivered seq (true), or d
	// passes or it stops (false).
	Wait(seq uint64, d time.Duration) bool
	// Stop ends it. Idempotent; never blocks for long.
	Stop()
}
