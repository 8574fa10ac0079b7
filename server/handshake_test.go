package server_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"partyline/internal/security"
	"partyline/internal/testutil"
	"partyline/server"
)

// refused sends req and checks that the server answers with status and
// then closes the connection.
func refused(t *testing.T, addr string, req []byte, status int) *http.Response {
	t.Helper()
	c := dialTCP(t, addr)
	c.write(req)
	resp := c.readResponse()
	if resp.StatusCode != status {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("HTTP %d (%s), want %d", resp.StatusCode, strings.TrimSpace(string(body)), status)
	}
	c.expectEOF()
	return resp
}

// request builds a raw HTTP request from lines.
func request(lines ...string) []byte { return []byte(strings.Join(lines, "\r\n") + "\r\n\r\n") }

func wsHeaders(addr string) []string {
	return []string{"Host: " + addr, "Upgrade: websocket", "Connection: Upgrade",
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version: 13"}
}

func TestHandshake(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.PingInterval = 0 })
	addr := s.Addrs()[0].String()

	upgraded := func(t *testing.T, path string) {
		t.Helper()
		c := dialWS(t, addr, path)
		c.alive()
	}
	t.Run("/party -> 101", func(t *testing.T) { upgraded(t, "/party") })
	t.Run("/party?x=1 -> 101", func(t *testing.T) { upgraded(t, "/party?x=1&y=%20") })
	t.Run("/party/ -> 101", func(t *testing.T) { upgraded(t, "/party/") })
	t.Run("/ -> 101 (default dialect)", func(t *testing.T) { upgraded(t, "/") })

	t.Run("RFC 6455 sample key -> sample accept", func(t *testing.T) {
		c := dialTCP(t, addr)
		c.write(request(append([]string{"GET /party HTTP/1.1"}, wsHeaders(addr)...)...))
		resp := c.readResponse()
		if resp.StatusCode != 101 || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
			t.Fatalf("HTTP %d accept %q", resp.StatusCode, resp.Header.Get("Sec-WebSocket-Accept"))
		}
		c.alive()
	})

	t.Run("header names and values in other cases -> 101", func(t *testing.T) {
		c := dialTCP(t, addr)
		c.write(request("GET /party HTTP/1.1", "host: "+addr, "upgrade: WebSocket", "connection: keep-alive, Upgrade",
			"sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==", "sec-websocket-version: 13"))
		if resp := c.readResponse(); resp.StatusCode != 101 {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
		c.alive()
	})

	t.Run("extensions offered -> 101 without extensions", func(t *testing.T) {
		c := dialWS(t, addr, "/party", "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
		c.alive() // dialWS fails if the response names an extension
	})

	t.Run("request dribbled byte by byte -> 101", func(t *testing.T) {
		c := dialTCP(t, addr)
		req, key := upgradeRequest(addr, "/party")
		c.writeChopped(req, 1)
		resp := c.readResponse()
		if resp.StatusCode != 101 {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
		c.checkUpgrade(resp, key)
		c.alive()
	})

	t.Run("request and frames in one write -> 101, frames handled", func(t *testing.T) {
		c := dialTCP(t, addr)
		req, key := upgradeRequest(addr, "/party")
		c.write(join(req, pingFrame("early"), textFrame(createMsg)))
		resp := c.readResponse()
		if resp.StatusCode != 101 {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
		c.checkUpgrade(resp, key)
		c.expectPong("early")
		c.expectJSON("created")
	})

	t.Run("request and half a frame in one write -> 101, frame completed later", func(t *testing.T) {
		c := dialTCP(t, addr)
		req, _ := upgradeRequest(addr, "/party")
		f := textFrame(createMsg)
		c.write(join(req, f[:5]))
		if resp := c.readResponse(); resp.StatusCode != 101 {
			t.Fatalf("HTTP %d", resp.StatusCode)
		}
		time.Sleep(20 * time.Millisecond) // let the server see the half frame alone
		c.write(f[5:])
		c.expectJSON("created")
	})

	t.Run("plain GET -> 426", func(t *testing.T) {
		resp := refused(t, addr, request("GET /party HTTP/1.1", "Host: "+addr, "Accept: text/html"), 426)
		if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
			t.Fatalf("426 without Upgrade: websocket: %v", resp.Header)
		}
	})
	t.Run("plain GET / -> 426", func(t *testing.T) {
		refused(t, addr, request("GET / HTTP/1.1", "Host: "+addr), 426)
	})
	t.Run("Connection without Upgrade token -> 426", func(t *testing.T) {
		h := wsHeaders(addr)
		h[2] = "Connection: keep-alive"
		refused(t, addr, request(append([]string{"GET /party HTTP/1.1"}, h...)...), 426)
	})
	t.Run("unsupported Sec-WebSocket-Version -> 426 naming 13", func(t *testing.T) {
		h := wsHeaders(addr)
		h[4] = "Sec-WebSocket-Version: 8"
		resp := refused(t, addr, request(append([]string{"GET /party HTTP/1.1"}, h...)...), 426)
		if resp.Header.Get("Sec-WebSocket-Version") != "13" {
			t.Fatalf("426 without Sec-WebSocket-Version: 13: %v", resp.Header)
		}
	})
	for _, path := range []string{"/nope", "/partyx", "/party/extra", "/PARTY", "//party", "/party/../nope"} {
		t.Run(path+" -> 404", func(t *testing.T) {
			refused(t, addr, request(append([]string{"GET " + path + " HTTP/1.1"}, wsHeaders(addr)...)...), 404)
		})
	}
	t.Run("POST -> 405", func(t *testing.T) {
		refused(t, addr, request(append([]string{"POST /party HTTP/1.1"}, wsHeaders(addr)...)...), 405)
	})
	t.Run("HTTP/1.0 -> 505", func(t *testing.T) {
		refused(t, addr, request(append([]string{"GET /party HTTP/1.0"}, wsHeaders(addr)...)...), 505)
	})
	t.Run("missing Sec-WebSocket-Key -> 400", func(t *testing.T) {
		h := wsHeaders(addr)
		refused(t, addr, request(append([]string{"GET /party HTTP/1.1"}, append(h[:3:3], h[4])...)...), 400)
	})
	t.Run("short Sec-WebSocket-Key -> 400", func(t *testing.T) {
		h := wsHeaders(addr)
		h[3] = "Sec-WebSocket-Key: c2hvcnQ="
		refused(t, addr, request(append([]string{"GET /party HTTP/1.1"}, h...)...), 400)
	})
	t.Run("missing Host -> 400", func(t *testing.T) {
		refused(t, addr, request(append([]string{"GET /party HTTP/1.1"}, wsHeaders(addr)[1:]...)...), 400)
	})
	t.Run("garbage request line -> 400", func(t *testing.T) {
		refused(t, addr, request("\x16\x03\x01 hello"), 400)
	})
	t.Run("header line without colon -> 400", func(t *testing.T) {
		refused(t, addr, request(append([]string{"GET /party HTTP/1.1", "NoColonHere"}, wsHeaders(addr)...)...), 400)
	})

	t.Run("incomplete request over the limit -> 431", func(t *testing.T) {
		req := []byte("GET /party HTTP/1.1\r\nX-Pad: " + strings.Repeat("p", 9<<10))
		refused(t, addr, req, 431)
	})
	t.Run("complete request over the limit -> 431", func(t *testing.T) {
		h := append(wsHeaders(addr), "X-Pad: "+strings.Repeat("p", 9<<10))
		refused(t, addr, request(append([]string{"GET /party HTTP/1.1"}, h...)...), 431)
	})
	t.Run("request just under the limit -> 101", func(t *testing.T) {
		req, _ := upgradeRequest(addr, "/party")
		pad := 8<<10 - len(req) - len("X-Pad: \r\n") - 10
		c := dialWS(t, addr, "/party", "X-Pad: "+strings.Repeat("p", pad))
		c.alive()
	})
}

func TestHandshakeTimeout(t *testing.T) {
	const wait = 300 * time.Millisecond
	s := testutil.Start(t, func(c *server.Config) { c.PingInterval = 0; c.HandshakeWait = wait })
	addr := s.Addrs()[0].String()
	for _, c := range []struct {
		name string
		send string
	}{
		{"nothing sent", ""},
		{"half a request", "GET /party HTTP/1.1\r\nHost: x\r\n"},
	} {
		t.Run(c.name+" -> closed after HandshakeWait", func(t *testing.T) {
			t.Parallel()
			rc := dialTCP(t, addr)
			start := time.Now()
			if c.send != "" {
				rc.write([]byte(c.send))
			}
			rc.expectEOF()
			if d := time.Since(start); d < wait-50*time.Millisecond || d > wait+time.Second {
				t.Fatalf("closed after %v, HandshakeWait %v", d, wait)
			}
		})
	}
	t.Run("dribbling slower than HandshakeWait -> closed", func(t *testing.T) {
		t.Parallel()
		rc := dialTCP(t, addr)
		req, _ := upgradeRequest(addr, "/party")
		start := time.Now()
		for _, b := range req {
			_ = rc.conn.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := rc.conn.Write([]byte{b}); err != nil {
				break // closed while we wrote
			}
			if time.Since(start) > 3*wait {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if resp, err := rc.tryResponse(2 * time.Second); err == nil {
			t.Fatalf("HTTP %d after dribbling for %v (HandshakeWait %v)", resp.StatusCode, time.Since(start), wait)
		}
	})
	t.Run("prompt handshake -> open past HandshakeWait", func(t *testing.T) {
		t.Parallel()
		c := dialWS(t, addr, "/party")
		// A handshake that never completes, begun after c's: the server
		// closes it at its HandshakeWait, by which time c's would have
		// passed too. The deadline must be gone once upgraded.
		witness := dialTCP(t, addr)
		witness.expectEOF()
		c.alive()
	})
}

func TestHandshakeOrigin(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) {
		c.PingInterval = 0
		c.AllowedOrigins = []string{"https://good.example", "http://localhost:3000"}
	})
	addr := s.Addrs()[0].String()
	for _, c := range []struct {
		origin string
		status int
	}{
		{"https://good.example", 101},
		{"HTTPS://GOOD.EXAMPLE", 101},
		{"http://localhost:3000", 101},
		{"", 101}, // not a browser
		{"https://evil.example", 403},
		{"https://good.example.evil.example", 403},
		{"http://good.example", 403},
		{"null", 403},
	} {
		t.Run(fmt.Sprintf("Origin %q -> %d", c.origin, c.status), func(t *testing.T) {
			var extra []string
			if c.origin != "" {
				extra = append(extra, "Origin: "+c.origin)
			}
			if c.status == 101 {
				dialWS(t, addr, "/party", extra...).alive()
				return
			}
			req, _ := upgradeRequest(addr, "/party", extra...)
			refused(t, addr, req, c.status)
		})
	}
}

// TestHandshakeSecurityEvents: every refused handshake is recorded as a
// security event named by its cause. The counts are process-wide and other
// tests run in parallel, so each case checks that its own cause grew.
func TestHandshakeSecurityEvents(t *testing.T) {
	const wait = 200 * time.Millisecond
	s := testutil.Start(t, func(c *server.Config) {
		c.PingInterval, c.HandshakeWait = 0, wait
		c.AllowedOrigins = []string{"https://good.example"}
	})
	addr := s.Addrs()[0].String()
	for _, c := range []struct {
		cause  string
		req    []byte // nil: send nothing
		status int    // 0: no answer, just closed
	}{
		{"origin", request(append([]string{"GET /party HTTP/1.1", "Origin: https://evil.example"}, wsHeaders(addr)...)...), 403},
		{"not_found", request(append([]string{"GET /nope HTTP/1.1"}, wsHeaders(addr)...)...), 404},
		{"bad_request", request("GET /party HTTP/1.1", "Host: "+addr), 426},
		{"too_large", request(append([]string{"GET /party HTTP/1.1", "X-Pad: " + strings.Repeat("x", 9000)}, wsHeaders(addr)...)...), 431},
		{"timeout", nil, 0},
	} {
		t.Run(c.cause, func(t *testing.T) {
			name := "handshake_refused_" + c.cause
			before := security.Count(name)
			if c.status != 0 {
				refused(t, addr, c.req, c.status)
			} else {
				dialTCP(t, addr).expectEOF()
			}
			testutil.Eventually(t, func() bool { return security.Count(name) > before })
		})
	}
}
