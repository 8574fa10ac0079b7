// Package server is the engine: it owns the gnet event loops, the sockets,
// the WebSocket handshake, per-connection state (decoder, outbound queue,
// the single per-connection timer) and graceful shutdown, and it routes each
// handshake to a dialect through the registry.
//
// Concurrency rules:
//   - Every gnet callback (OnOpen, OnTraffic, OnClose) and every task the
//     engine schedules on a loop (flush, tick, Conn.Do) runs on the
//     connection's event loop; fields marked "loop only" are touched there
//     and nowhere else.
//   - conn.Send, conn.SendText, conn.Close and conn.Do are safe from any
//     goroutine: they take conn.mu (never held across I/O), queue, and ask
//     the owning loop to flush once per loop pass.
//   - Inbound buffers: a payload handed to a Session is a view of gnet's
//     inbound buffer and is valid only during the OnMessage call.
//   - Pending handshakes (pending.go) are in a per-loop list, loop only;
//     the totals the admission of a new socket reads are atomics, and a
//     socket of another loop is dropped by a task on that loop.
//   - The global outbound count (budget.go) is one atomic: Send adds what
//     it queues, the owning loop takes it off when it flushes and adds
//     what gnet keeps; each loop's backlog list and its enforcement of
//     --max-outbound-total are loop only, and loops see each other's
//     largest backlog through an atomic.
//   - Abuse limits (abuse.go): a connection's inbound rate is loop only
//     and checked without allocation; the per-address counts and the
//     per-address handshake limiter are shared by the loops and take one
//     short mutex, at the handshake and in OnClose only.
//   - Outbound frames are reference counted (routing.Frame); a flush writes
//     every queued frame of a connection in one writev and releases them.
//   - Big rooms (fanout.go): a loop is a routing.Group; other goroutines
//     hand it routing.Fanouts under loop.mu, and its flush pass queues
//     them (oldest first, up to loop.fanBudget deliveries a pass) to its own
//     connections before it writes the dirty ones.
//     A connection that negotiated permessage-deflate (compression.go) is
//     written the frame's shared compressed variant, built once by the
//     first loop that needs it (Frame.Deflated is safe from any goroutine).
package server
