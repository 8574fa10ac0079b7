// Package codec owns the RFC 6455 wire format and the JSON helpers that every
// dialect shares. It knows nothing about sockets or event loops.
//
// Decoder is an incremental frame decoder over byte slices: it is fed whatever
// bytes have arrived, consumes only complete frames and keeps partial-message
// state (fragment buffer, UTF-8 state) between calls. A Decoder belongs to one
// connection and must be used by one goroutine at a time (in the server, the
// connection's event loop).
//
// Buffer lifetimes: a payload returned by Decoder.Next aliases the caller's
// input (unfragmented frames are unmasked in place), the decoder's fragment
// buffer, or (a permessage-deflate message, Decoder.Deflate) a pooled
// buffer holding its inflation; it is valid until the caller discards the
// input, calls Next again or calls Release, whichever comes first. Callers
// that keep bytes must copy them.
//
// permessage-deflate (deflate.go) runs without context takeover: the pooled
// inflaters and deflaters are safe from any goroutine and held only for
// one message.
//
// The Append* functions encode into a caller-owned slice and never retain it;
// they are safe from any goroutine.
package codec
