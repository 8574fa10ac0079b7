package server_test

import (
	"context"
	"io"
	"partyline/assemble"
	"testing"
	"time"

	"partyline/internal/testutil"
	"partyline/server"
)

// promptEOF is how soon after a protocol violation the server must have
// closed the TCP connection (issue 16: the close wait is not for failures).
const promptEOF = 100 * time.Millisecond

// Failing the connection (RFC 6455 7.1.7): the server sends its close
// frame and closes the socket at once, without waiting for the peer's
// close, which it must not read anyway. The close wait is long (the
// default, 2 s) so that waiting for it would fail the test.
func TestFailClosesPromptly(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.PingInterval = 0; c.CloseWait = 2 * time.Second })
	addr := s.Addrs()[0].String()
	cases := []struct {
		name string
		send []byte
		code uint16
	}{
		{"reserved bits -> 1002", rsvFrame(1, opText, "x"), 1002},
		{"unmasked frame -> 1002", unmaskedFrame(finBit|opText, []byte("x")), 1002},
		{"reserved opcode -> 1002", maskedFrame(finBit|0x3, nil), 1002},
		{"invalid UTF-8 -> 1007", maskedFrame(finBit|opText, []byte{0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xcf, 0x83, 0xce, 0xbc, 0xce, 0xb5, 0xed, 0xa0, 0x80}), 1007},
		{"over --max-message-size, header only -> 1009", maskedFrame(finBit|opText, make([]byte, maxMsg+1))[:14], 1009},
		{"close with an invalid code -> 1002", closeFrame(999, ""), 1002},
		{"fragmented ping -> 1002", maskedFrame(opPing, []byte("p")), 1002},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := dialWS(t, addr, "/party")
			start := time.Now()
			c.write(tc.send)
			f := c.next()
			if f.op != opClose || f.closeCode() != tc.code {
				t.Fatalf("got %v, want close %d", f, tc.code)
			}
			c.expectEOF() // without answering the close
			if d := time.Since(start); d > promptEOF {
				t.Fatalf("TCP closed %v after the violation, want < %v", d, promptEOF)
			}
		})
	}
}

// The normal closing handshake started by the server: it waits for the
// peer's close (up to the close wait) and closes the socket as soon as that
// arrives; a peer that never answers is cut off when the close wait ends.
func TestServerCloseHandshake(t *testing.T) {
	const closeWait = 400 * time.Millisecond
	cfg := testutil.Config(t)
	cfg.PingInterval, cfg.CloseWait, cfg.Drain = 0, closeWait, 50*time.Millisecond
	s, err := assemble.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-ran })
	select {
	case <-s.Ready():
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	}
	addr := s.Addrs()[0].String()
	answers, silent := dialWS(t, addr, "/party"), dialWS(t, addr, "/party")

	cancel() // the drain closes both with 1001
	for _, c := range []*rawClient{answers, silent} {
		if f := c.next(); f.op != opClose || f.closeCode() != 1001 {
			t.Fatalf("got %v, want close 1001", f)
		}
	}
	start := time.Now()
	answers.write(closeFrame(1001, ""))
	answers.expectEOF()
	if d := time.Since(start); d > promptEOF {
		t.Fatalf("TCP closed %v after the peer's close, want < %v", d, promptEOF)
	}
	// The silent peer still has its socket until the close wait ends.
	_ = silent.conn.SetReadDeadline(time.Now().Add(ioWait))
	if n, err := io.ReadAll(silent.br); len(n) > 0 || !isClosed(err) {
		t.Fatalf("silent peer: %d bytes, %v", len(n), err)
	}
	if d := time.Since(start); d < closeWait/2 {
		t.Fatalf("silent peer cut off after %v, before the close wait (%v)", d, closeWait)
	}
}
