package backplane

import (
	"context"
	"strings"

	"partyline/routing"
)

// Cluster is a Node of a cluster with what the party dialects use beyond
// Node: node membership, directed messages between nodes, a registry of
// records and room logs. Package cluster implements it over NATS
// ((*cluster.Node).Cluster); a single node has no implementation (party's
// single-node path is its own: seats, persistence).
type Cluster interface {
	Node

	// Member names this run of the node: node id "#" incarnation (see
	// MemberNode). Records that a node holds carry it.
	Member() string

	// Ctx is a context for one blocking call (a few seconds), ended
	// when the node stops.
	Ctx() (context.Context, context.CancelFunc)

	// Direct sends a message of kind, with h and f (nil: none), to the
	// handler of kind (Handle) on node id. Never blocks.
	Direct(node, kind string, h Header, f *routing.Frame)
	// Handle sets the handler of the directed messages of kind. Call
	// before the server starts.
	Handle(kind string, fn func(m Msg))

	// OnNodeDead registers fn to run (on a backplane goroutine; it may
	// block) when another node is gone and this node is the one that
	// cleans up after it: fn removes every entry g.Holds. It does all it
	// can and returns the first error that left an entry in place (not
	// ErrConflict or ErrNotFound: someone else changed that entry); fn is
	// then run again later until it returns nil, so it re-reads what it
	// changes and re-checks g.Holds. Call before the server starts.
	OnNodeDead(fn func(g Gone) error)

	// Registry is the shared record bucket called name ("party": the
	// party rooms and their retained states). Usable once the server has
	// started.
	Registry(name string) Registry

	// RoomLog registers a dialect's room log. Call before the server
	// starts.
	RoomLog(cfg RoomLogConfig) RoomLog
}

// Gone names the members a reaper (Cluster.OnNodeDead) removes.
type Gone interface {
	// Holds reports whether member (a Cluster.Member string) is gone.
	Holds(member string) bool
}

// MemberNode splits a Member string into node id and incarnation.
func MemberNode(member string) (node, inc string) {
	i := strings.LastIndexByte(member, '#')
	if i < 0 {
		return member, ""
	}
	return member[:i], member[i+1:]
}
