// Package codec owns the RFC 6455 wire format and the JSON helpers that every
// dialect shares. It knows nothing about sockets or event loops.
//
// Decoder is an incremental frame decoder over byte slices: it is fed whatever
// bytes have arrived, consumes only complete frames and keeps partial-message
// state (fragment buffer, UTF-8 state) between calls. A Decoder belongs to one
// connection and must be used by one goroutine at a time (in the server, the
// connection's event loop).
//
// Buffer lifetimes: a payload returned by Decoder.Next aliases either the
// caller's input (unfragmented frames are unmasked in place) or the decoder's
// fragment buffer; it is valid until the caller discards the input or calls
// Next again, whichever comes first. Callers that keep bytes must copy them.
//
// The Append* functions encode into a caller-owned slice and never retain it;
// they are safe from any goroutine.
package codec
