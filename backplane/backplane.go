// Package backplane is the seam between the dialects and what they share
// with other nodes. A dialect is written once against the interfaces here
// (Node, Bus, Census, Names) and runs unchanged on one node, with Local
// (in memory, this package), or in a cluster, with the NATS implementation
// in package cluster; main chooses which. No dialect imports NATS or
// branches on the mode.
//
//   - Bus carries a hub's room traffic: a frame published to a room
//     reaches its members on every node (routing.Broker plus named and
//     remote-only publication, and Ensure: "this node hears the room").
//   - Census counts a namespace's connections per key on every node, with
//     the totals before and after each change (who was first, who last).
//   - Names claims a name within a scope once across the cluster
//     (compare-and-set: create if absent, delete at the claim's revision).
//   - Node holds them together with a bounded worker pool (Go), a queue
//     of clean-ups that is never lost (Cleanup), namespace-wide notices
//     (PublishAll/OnAll) and the chat store.
//
// Concurrency: every method is safe from any goroutine and never blocks
// an event loop, except the ones documented as blocking (Census.Sync,
// Census.RemoteTotal, Names.Claim/Release, OpenStore), which belong on a
// worker (Node.Go). Callbacks (Ensure's done, Mark's done, handlers) run
// on a backplane goroutine in a cluster and may run before the call that
// registered them returns on a single node (Local), so a caller must not
// hold a lock the callback takes. Frames passed in are read during the
// call only (retain them to keep them); a Msg's Data is valid during the
// handler only.
package backplane

import (
	"errors"
	"log/slog"
	"time"

	"partyline/routing"
	"partyline/store"
)

// Header is metadata carried beside a frame between nodes (like an HTTP
// header, but keys are compared exactly).
type Header map[string][]string

// Get returns the first value of key ("" if none).
func (h Header) Get(key string) string {
	if v := h[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// Msg is a message from another node: a frame's bytes and its header.
// Data is valid during the handler only.
type Msg struct {
	Header Header
	Data   []byte
}

// LostText is the notice a room's local members get when room traffic
// from other nodes was dropped on this node (Bus.SetLost).
const LostText = "messages from other nodes were lost on this server (overloaded): some may be missing"

// ErrConflict is the error of a compare-and-set that lost (the key exists,
// or changed since the revision given); ErrNotFound that of a missing key.
// Implementations wrap their own errors so that errors.Is finds these.
var (
	ErrConflict = errors.New("backplane: revision conflict")
	ErrNotFound = errors.New("backplane: key not found")
)

// Bus carries one hub's room traffic to the room's members on every node.
// One per dialect hub (Node.Bus).
type Bus interface {
	// Publish implements routing.Broker: the room's local members at
	// once (their count is returned), the other nodes' members after.
	routing.Broker

	// Ensure makes this node hear the room called name and calls done
	// once nothing another node publishes to the room afterwards can be
	// missed here. The node keeps hearing it while the room has local
	// members, or until release is called (idempotent). Never blocks.
	Ensure(name string, done func(release func()))

	// PublishName publishes f to the room called name on every node,
	// this one included if the room exists here (the local members it
	// was queued for are returned); h, if not nil, travels with it.
	PublishName(name string, f *routing.Frame, droppable bool, h Header) int

	// PublishRemote publishes f, with h, to the room on the other nodes
	// only.
	PublishRemote(name string, f *routing.Frame, droppable bool, h Header)

	// SetLost sets the notice (the dialect's error frame, say with
	// LostText) a room's local members get when traffic for the room from
	// other nodes was dropped here; SetOnLost replaces it with a call.
	// SetOnMessage sees every message for a room from another node before
	// the default delivery (a broadcast of Data to the local room) and
	// returns true when it handled it. Set before the server starts.
	SetLost(f *routing.Frame)
	SetOnLost(fn func(room string))
	SetOnMessage(fn func(room string, m Msg) bool)
}

// Census counts a namespace's connections per key (a room, a user, a
// team) on every node: each node reports its own count, the census adds
// them up.
type Census interface {
	// Mark brings this node's count of key up to date with count() (read
	// when the change is written, so a burst of changes costs one write)
	// and then calls done, if not nil, with the totals on every node
	// before and after the write. Marks of one key apply in order. Never
	// blocks. count must not call into the census.
	Mark(key string, count func() int, done func(before, after int))

	// Watch keeps a local copy of the other nodes' counts, for Remote and
	// SetOnChange. Call before the server starts.
	Watch()

	// Remote is key's count on the other nodes, from the local copy
	// (Watch). Lock-free enough for an event loop.
	Remote(key string) int

	// RemoteTotal is key's count on the other nodes, read from the shared
	// state itself. Blocks.
	RemoteTotal(key string) (int, error)

	// Sync waits, at most d, until the local copy holds every write made
	// on any node before the call (read-your-writes for Remote). Blocks.
	Sync(d time.Duration) error

	// SetOnReap sets a call made after a dead node's counts were removed
	// from key (totals before and after); SetOnChange one made after the
	// local copy of key changed (Watch), whoever wrote it. They run on a
	// backplane goroutine and must not block long. Set before the server
	// starts.
	SetOnReap(fn func(key string, before, after int))
	SetOnChange(fn func(key string))
}

// Names claims names within scopes once across every node.
type Names interface {
	// Claim takes name in scope if nobody holds it: ok reports whether
	// it did, rev is the claim's revision (for Release). Blocks.
	Claim(scope, name string) (rev uint64, ok bool, err error)
	// Release gives up the claim made at rev (a claim made since by
	// someone else stays). Blocks; idempotent.
	Release(scope, name string, rev uint64) error
}

// Node is what one server process shares with the others: buses,
// censuses and names per namespace (unique per dialect, the same on every
// node), workers and clean-ups. Create buses, censuses and names, and
// register OnAll handlers, before the server starts.
type Node interface {
	// ID is the node's name ("" for a single node without one).
	ID() string
	Logger() *slog.Logger

	Bus(ns string, hub *routing.Hub) Bus
	Census(ns string) Census
	Names(ns string) Names

	// Go runs fn on a bounded worker pool and reports false, at once,
	// when the pool is full (the caller answers "busy").
	Go(fn func()) bool

	// Cleanup queues fn, a clean-up of shared state (an undone
	// membership, a released name), and runs it until it succeeds, so it
	// must be idempotent. Never blocks, never refuses.
	Cleanup(fn func() error)

	// PublishAll sends f, with h, to every other node's handler of ns
	// (OnAll): for rare notices meant for everyone. Never blocks.
	PublishAll(ns string, f *routing.Frame, h Header)
	// OnAll sets the handler of ns's notices from other nodes (never this
	// node's own). Call before the server starts.
	OnAll(ns string, fn func(m Msg))

	// OpenStore opens the chat store (history and groups) in dir: on
	// disk for one node, shared by every node in a cluster. Blocks.
	OpenStore(dir string, opts store.PebbleOptions) (store.Store, error)
}

// Set replaces key's values with v.
func (h Header) Set(key, v string) { h[key] = []string{v} }
