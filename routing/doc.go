// Package routing owns who receives what: encode-once frames, rooms (named
// groups of members) in a sharded hub, and the Broker seam through which
// room traffic passes so that a cross-node backplane can replace the
// in-process default without touching the dialects.
//
// Concurrency rules:
//   - Frame: built by one goroutine, then immutable; shared by reference
//     count. Whoever holds a reference may read Bytes until it calls Release.
//   - Room: membership changes take Room.mu and cost O(1) amortised at any
//     size: members sit in append-only slot arrays (in join order, and per
//     event loop) of which a published snapshot holds prefixes, so a join
//     appends past every reader; a leave sets its slot to nil (readers
//     skip it) and the arrays are compacted once dead slots outnumber live
//     ones. Readers (fan-out) load the snapshot with one atomic load and
//     never lock: a lock-free Broadcast reaches every member of its
//     snapshot that has not left by the time it is reached, never one that
//     joined after it; under the room's lock (Join's before, LeaveThen's
//     after, BeginSeq) it reaches exactly the current members. Member
//     slices (Members, the callbacks' arguments) are shared and must not
//     be modified; after joins they cost nothing, after a leave or a swap
//     the first one costs a copy of the list.
//   - Fan-out of big rooms: a room of at least Hub.FanoutMin members whose
//     Senders belong to event loops (Looped) broadcasts by handing each
//     loop one Fanout (the frame and the snapshot's members of that loop);
//     the loop queues it on its own goroutine, Fanouts in the order they
//     were handed over. A room goes on using Fanouts while one of them is
//     undelivered, and Room.SendTo (one member) goes the same way, so a
//     member receives a room's frames in the order the room sent them.
//   - Hub: lookups are lock-free (sync.Map per shard); creation and deletion
//     are atomic per name.
//   - Sender.Send is safe from any goroutine and never blocks: a sender that
//     cannot keep up is closed (or its droppable frames shed) by its owner.
package routing
