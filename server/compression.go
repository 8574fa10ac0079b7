package server

import (
	"bytes"

	"github.com/gobwas/httphead"
	"github.com/gobwas/ws/wsflate"

	"partyline/routing"
)

// permessage-deflate (RFC 7692), with --compression.
//
// The server accepts the first offer it can honour and always answers with
// server_no_context_takeover and client_no_context_takeover (both allowed
// in any response, sections 7.1.1.1 and 7.1.1.2): every message is
// compressed on its own in both directions, so a connection keeps no LZ77
// window between messages (an idle connection costs nothing extra: the
// inflater and deflater are pooled and held only while a message is
// processed), and a broadcast frame is compressed once and the same bytes
// go to every recipient that negotiated compression (routing.Frame.Deflated).
//
// An offer is declined (no extension, the connection runs uncompressed) if
// it has an unknown or repeated parameter, or an invalid value (section
// 7.1: "MUST decline"). server_max_window_bits=N is accepted and echoed:
// with no context takeover a message of at most 2^N bytes cannot refer
// further back than the window, and a longer one goes uncompressed to that
// connection. client_max_window_bits, with or without a value, needs
// nothing of the server: it inflates with the largest window (15 bits),
// and does not name the parameter in its answer.

// flateParams is what one handshake agreed (loop only, in hsState).
type flateParams struct {
	on     bool
	window uint8 // server_max_window_bits agreed; 15 when the client set none
}

// negotiate is the upgrader's Negotiate callback: it answers the first
// acceptable permessage-deflate offer and ignores the rest.
func (h *hsState) negotiate(opt httphead.Option) (httphead.Option, error) {
	if h.flate.on || !bytes.Equal(opt.Name, wsflate.ExtensionNameBytes) {
		return httphead.Option{}, nil
	}
	p, ok := parseDeflateOffer(opt)
	if !ok {
		return httphead.Option{}, nil // decline this offer; a later one may do
	}
	h.flate = p
	resp := wsflate.Parameters{ServerNoContextTakeover: true, ClientNoContextTakeover: true}
	if offers(opt, "server_max_window_bits") { // accepted by echoing it (7.1.2.1)
		resp.ServerMaxWindowBits = wsflate.WindowBits(p.window)
	}
	return resp.Option(), nil
}

func offers(opt httphead.Option, name string) bool {
	_, ok := opt.Parameters.Get(name)
	return ok
}

// parseDeflateOffer checks an offer's parameters (RFC 7692 section 7.1).
func parseDeflateOffer(opt httphead.Option) (flateParams, bool) {
	p := flateParams{on: true, window: 15}
	var seen [4]bool
	ok := true
	opt.Parameters.ForEach(func(key, val []byte) bool {
		i := -1
		switch string(key) {
		case "server_no_context_takeover":
			i, ok = 0, len(val) == 0
		case "client_no_context_takeover":
			i, ok = 1, len(val) == 0
		case "server_max_window_bits":
			i = 2
			p.window, ok = windowBits(val)
		case "client_max_window_bits":
			i = 3
			if len(val) > 0 {
				_, ok = windowBits(val)
			}
		default:
			ok = false
		}
		if ok && seen[i] {
			ok = false
		}
		if ok {
			seen[i] = true
		}
		return ok
	})
	return p, ok
}

// windowBits parses a window size parameter: 8 to 15, in decimal without
// leading zeros.
func windowBits(v []byte) (uint8, bool) {
	switch {
	case len(v) == 1 && (v[0] == '8' || v[0] == '9'):
		return v[0] - '0', true
	case len(v) == 2 && v[0] == '1' && v[1] >= '0' && v[1] <= '5':
		return 10 + v[1] - '0', true
	}
	return 0, false
}

// wire returns the bytes to write for f on c: its compressed variant when
// c negotiated compression and f qualifies, else f as encoded. Loop only.
func (c *conn) wire(f *routing.Frame) []byte {
	if c.zWin != 0 && (c.zWin >= 15 || len(f.Payload()) <= 1<<c.zWin) {
		if z := f.Deflated(c.srv.cfg.CompressionMinSize); z != nil {
			return z
		}
	}
	return f.Bytes()
}
