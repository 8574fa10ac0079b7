// Package routing owns who receives what: encode-once frames, rooms (named
// groups of members) in a sharded hub, and the Broker seam through which
// room traffic passes so that a cross-node backplane can replace the
// in-process default without touching the dialects.
//
// Concurrency rules:
//   - Frame: built by one goroutine, then immutable; shared by reference
//     count. Whoever holds a reference may read Bytes until it calls Release.
//   - Room: membership changes take Room.mu; readers (fan-out) load an
//     immutable snapshot with one atomic load and never lock. A snapshot
//     slice must not be modified.
//   - Hub: lookups are lock-free (sync.Map per shard); creation and deletion
//     are atomic per name.
//   - Sender.Send is safe from any goroutine and never blocks: a sender that
//     cannot keep up is closed (or its droppable frames shed) by its owner.
package routing
