package wsc

import (
	"errors"
	"testing"
)

func TestAcceptKey(t *testing.T) {
	// RFC 6455 section 1.3.
	c := &Conn{}
	copy(c.key[:], "dGhlIHNhbXBsZSBub25jZQ==")
	if got := c.acceptKey(); string(got[:]) != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("accept %s", got)
	}
}

func TestParseResponse(t *testing.T) {
	c := &Conn{}
	copy(c.key[:], "dGhlIHNhbXBsZSBub25jZQ==")
	ok := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n\x81\x02hi"
	head := len(ok) - 4
	for i := range head { // every split point before the end of the head
		if n, _, err := c.parseResponse([]byte(ok[:i])); n != 0 || err != nil {
			t.Fatalf("prefix %d: n %d err %v", i, n, err)
		}
	}
	if n, st, err := c.parseResponse([]byte(ok)); n != head || st != 101 || err != nil {
		t.Fatalf("full: n %d status %d err %v", n, st, err)
	}
	bad := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: nope\r\n\r\n"
	if _, _, err := c.parseResponse([]byte(bad)); !errors.Is(err, ErrHandshake) {
		t.Fatalf("bad accept: %v", err)
	}
	if _, st, err := c.parseResponse([]byte("HTTP/1.1 503 Service Unavailable\r\n\r\n")); st != 503 || !errors.Is(err, ErrRefused) {
		t.Fatalf("503: %d %v", st, err)
	}
}

// permessage-deflate is taken only when offered, and then turns on the
// decoder's inflation.
func TestParseResponseDeflate(t *testing.T) {
	resp := "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n" +
		"Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n\r\n"
	for _, offered := range []bool{false, true} {
		c := &Conn{offerDeflate: offered}
		copy(c.key[:], "dGhlIHNhbXBsZSBub25jZQ==")
		_, _, err := c.parseResponse([]byte(resp))
		if offered != (err == nil) || c.Deflated != offered || c.dec.Deflate != offered {
			t.Fatalf("offered %v: err %v, deflated %v", offered, err, c.Deflated)
		}
	}
}
