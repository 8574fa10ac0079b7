// Package wsc runs many WebSocket client connections on a few gnet event
// loops: no goroutine per connection. A connection is a *Conn whose
// Handler receives the handshake completion, each complete message and the
// close, all on the connection's event loop.
//
// Threading rules, as in gnet:
//   - Engine.Dial blocks (TCP connect) and must not be called on an event loop;
//     it is safe from any other goroutine.
//   - Conn methods say "event loop only" or "any goroutine".
//   - Loop.Run queues a function on a loop; Loop.Do also waits for it.
//
// Buffers: the payload given to Handler.Message aliases gnet's inbound
// buffer and is valid only until Message returns.
package wsc
