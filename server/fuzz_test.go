package server_test

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"partyline/internal/testutil"
	"partyline/server"
)

// fuzzMaxHandshake is the server's MaxHandshake in FuzzHandshake.
const fuzzMaxHandshake = 4 << 10

// FuzzHandshake sends arbitrary bytes to a real server (one per fuzzing
// process) as the start of a connection, half-closes, and checks the
// answer: a 101 followed by well-formed frames, an HTTP error status, or a
// plain close; never a crash or a hang.
func FuzzHandshake(f *testing.F) {
	s := testutil.Start(f, func(c *server.Config) {
		c.PingInterval = 0
		c.MaxHandshake = fuzzMaxHandshake
		c.HandshakeWait = 2 * time.Second
	})
	addr := s.Addrs()[0].String()

	valid, _ := upgradeRequest("h", "/party")
	f.Add(valid)
	f.Add(join(valid, pingFrame("x"), textFrame(createMsg), closeFrame(1000, "")))
	f.Add(join(valid, maskedFrame(0xc1, []byte("rsv"))))
	f.Add(join(valid, textFrame("{\"type\":\"send\",\"data\":\"\xff\"}")))
	f.Add(valid[:len(valid)-2])
	for _, path := range []string{"/", "/echo", "/rooms", "/notify", "/teams", "/channels/fishing", "/channels/", "/channels/%zz", "/chat", "/presence", "/partyx", "/party/x", "*", "http://h/party", ""} {
		r, _ := upgradeRequest("h", path)
		f.Add(r)
	}
	f.Add(request("GET /party HTTP/1.1", "Host: h"))
	f.Add(request("POST /party HTTP/1.1", "Host: h", "Content-Length: 5"))
	f.Add(request("GET /party HTTP/1.0", "Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"))
	f.Add(request("GET /party HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13", "Origin: https://x"))
	f.Add(request("GET /party HTTP/1.1", "Host: h", "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Version: 99"))
	f.Add(request("GET /party HTTP/1.1", " Host: h", "Upgrade:", ":", "Connection: Upgrade,,,"))
	f.Add([]byte("GET /party HTTP/1.1\n\n"))
	f.Add([]byte("\r\n\r\n"))
	f.Add([]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"))
	f.Add(bytes.Repeat([]byte("A"), fuzzMaxHandshake+1))

	f.Fuzz(func(t *testing.T, req []byte) {
		if len(req) > 2*fuzzMaxHandshake {
			return
		}
		conn, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(3 * time.Second))
		_, werr := conn.Write(req)
		if werr == nil {
			_ = conn.(*net.TCPConn).CloseWrite()
		}
		out, err := io.ReadAll(conn)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("no answer and no close within 3s (%d bytes so far: %q)", len(out), out[:min(len(out), 100)])
		}
		checkHandshakeAnswer(t, req, out)
	})
}

// checkHandshakeAnswer checks what the server sent back for req.
func checkHandshakeAnswer(t *testing.T, req, out []byte) {
	end := bytes.Index(req, []byte("\r\n\r\n"))
	complete := end >= 0 && end+4 <= fuzzMaxHandshake
	if len(out) == 0 {
		if complete {
			t.Fatalf("a complete request head got no answer")
		}
		return
	}
	br := bufio.NewReader(bytes.NewReader(out))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("answer is not an HTTP response: %v: %q", err, out[:min(len(out), 200)])
	}
	switch code := resp.StatusCode; {
	case code == http.StatusSwitchingProtocols:
		if !complete || !bytes.HasPrefix(req, []byte("GET ")) {
			t.Fatalf("101 for a request that is not a complete GET: %q", req)
		}
		if len(resp.Header.Get("Sec-WebSocket-Accept")) != 28 {
			t.Fatalf("101 without a valid Sec-WebSocket-Accept: %v", resp.Header)
		}
		checkServerFrames(t, br)
	case code == http.StatusRequestHeaderFieldsTooLarge:
		if complete {
			t.Fatalf("431 for a request head of %d bytes (limit %d)", end+4, fuzzMaxHandshake)
		}
	case code >= 400 && code < 500, code == 503, code == 505:
		if !complete {
			t.Fatalf("HTTP %d before the request head was complete", code)
		}
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("HTTP %d body: %v", code, err)
		}
		if rest, _ := io.ReadAll(br); len(rest) > 0 {
			t.Fatalf("HTTP %d (%q) followed by %q", code, body, rest[:min(len(rest), 100)])
		}
	default:
		t.Fatalf("HTTP %d: want 101, 4xx, 503 or 505", code)
	}
}

// checkServerFrames checks that the rest of the stream is whole,
// well-formed server frames.
func checkServerFrames(t *testing.T, br *bufio.Reader) {
	for {
		var h [2]byte
		if _, err := io.ReadFull(br, h[:]); err == io.EOF {
			return
		} else if err != nil {
			t.Fatalf("truncated frame header: %v", err)
		}
		if h[1]&0x80 != 0 || h[0]&0x70 != 0 {
			t.Fatalf("server frame masked or with reserved bits: %x", h)
		}
		op, n := h[0]&0xf, int(h[1]&0x7f)
		switch n {
		case 126:
			var l [2]byte
			if _, err := io.ReadFull(br, l[:]); err != nil {
				t.Fatalf("truncated length: %v", err)
			}
			n = int(l[0])<<8 | int(l[1])
		case 127:
			t.Fatalf("unexpected 64-bit frame from the server")
		}
		switch op {
		case opText, opClose, opPong:
		default:
			t.Fatalf("unexpected opcode %d from the server", op)
		}
		if _, err := io.CopyN(io.Discard, br, int64(n)); err != nil {
			t.Fatalf("truncated payload: %v", err)
		}
	}
}
