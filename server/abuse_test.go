package server_test

import (
	"bufio"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"partyline/internal/security"
	"partyline/internal/testutil"
	"partyline/server"
)

// sample returns the value of the first sample of name whose line
// contains label ("" for any), and whether there is one.
func sample(t *testing.T, s *server.Server, name, label string) (float64, bool) {
	t.Helper()
	resp, err := http.Get(testutil.HTTPURL(s, "/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if (strings.HasPrefix(line, name+"{") || strings.HasPrefix(line, name+" ")) && strings.Contains(line, label) {
			v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v, true
		}
	}
	return 0, false
}

// echoMsg is an echo-dialect message carrying n, and the data it echoes.
func echoMsg(n int) []byte { return textFrame(`{"n":` + strconv.Itoa(n) + `}`) }

// expectEcho reads the echo of n.
func (c *rawClient) expectEcho(n int) {
	c.t.Helper()
	m := c.expectJSON("echo")
	if d, _ := m["data"].(map[string]any); d == nil || d["n"] != float64(n) {
		c.t.Fatalf("echo %v, want n=%d", m, n)
	}
}

// TestRateLimitMessages: past its burst a connection's messages are
// dropped; the first drop is answered with the dialect's error (once a
// second at most), the connection stays open, and a token later it is
// served again. Drops are counted in /metrics.
func TestRateLimitMessages(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) {
		c.MaxMessagesPerSec, c.MessageBurst, c.RateLimitGrace = 1, 3, time.Minute
	})
	addr := s.Addrs()[0].String()
	c := dialWS(t, addr, "/echo")
	c.expectJSON("welcome")
	before := metric(t, s, "partyline_rate_limited_messages_total")
	events := security.Count("rate_limited")
	// The burst and two more at once: three echoes, one error, one silent drop.
	c.write(join(echoMsg(1), echoMsg(2), echoMsg(3), echoMsg(4), echoMsg(5)))
	for i := 1; i <= 3; i++ {
		c.expectEcho(i)
	}
	if m := c.expectJSON("error"); m.str("message") != server.RateLimitMessage {
		t.Fatalf("error %v, want %q", m, server.RateLimitMessage)
	}
	c.alive() // nothing else came: the 5th was dropped without a reply
	if got := metric(t, s, "partyline_rate_limited_messages_total") - before; got != 2 {
		t.Fatalf("rate_limited_messages_total grew by %v, want 2", got)
	}
	if security.Count("rate_limited") == events {
		t.Fatal("no rate_limited security event")
	}
	// Recovery: a token comes back every second.
	for i := 6; ; i++ {
		c.write(echoMsg(i))
		f, err := c.readFrame(100 * time.Millisecond)
		if err == nil {
			var m msg
			if json.Unmarshal(f.payload, &m) != nil || m.str("type") != "echo" {
				t.Fatalf("got %s, want an echo", f.payload)
			}
			break
		}
		if i > 200 {
			t.Fatal("never served again")
		}
	}
}

// TestRateLimitCloses: a connection that stays over its rate for the grace
// is closed with 1008 "rate limit"; one that slows down in time is not.
func TestRateLimitCloses(t *testing.T) {
	const grace = 300 * time.Millisecond
	s := testutil.Start(t, func(c *server.Config) {
		c.MaxMessagesPerSec, c.MessageBurst, c.RateLimitGrace = 10, 2, grace
	})
	addr := s.Addrs()[0].String()
	closes, _ := sample(t, s, "partyline_closes_total", `reason="rate_limit"`)
	c := dialWS(t, addr, "/echo")
	c.expectJSON("welcome")
	start := time.Now()
	var closed sframe
	for i := 0; closed.op != opClose; i++ {
		if time.Since(start) > 5*time.Second {
			t.Fatal("not closed within 5s")
		}
		c.write(echoMsg(i))
		for {
			f, err := c.readFrame(5 * time.Millisecond)
			if err != nil {
				break
			}
			if f.op == opClose {
				closed = f
				break
			}
		}
	}
	if took := time.Since(start); took < grace {
		t.Fatalf("closed after %v, before the grace of %v", took, grace)
	}
	if closed.closeCode() != 1008 || string(closed.payload[2:]) != "rate limit" {
		t.Fatalf("close %d %q, want 1008 \"rate limit\"", closed.closeCode(), closed.payload[2:])
	}
	testutil.Eventually(t, func() bool {
		n, _ := sample(t, s, "partyline_closes_total", `reason="rate_limit"`)
		return n > closes
	})

	// Over the limit for less than the grace, then within it: stays open.
	c = dialWS(t, addr, "/echo")
	c.expectJSON("welcome")
	c.write(join(echoMsg(1), echoMsg(2), echoMsg(3)))
	c.expectEcho(1)
	c.expectEcho(2)
	c.expectJSON("error")
	deadline := time.Now().Add(2 * grace)
	for i := 10; time.Now().Before(deadline); i++ {
		time.Sleep(150 * time.Millisecond) // the client's own pace: under 10/s
		c.write(echoMsg(i))
		c.expectEcho(i)
	}
	c.alive()
}

// TestRateLimitBytes: --max-bytes-per-second drops a message whose bytes
// the bucket does not hold, and a message never larger than the burst.
func TestRateLimitBytes(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) {
		c.MaxMessagesPerSec, c.MaxBytesPerSec, c.MaxMessageSize, c.RateLimitGrace = 0, 500, 1000, time.Minute
	})
	c := dialWS(t, s.Addrs()[0].String(), "/echo")
	c.expectJSON("welcome")
	big := func(n int) []byte { // about 450 bytes
		return textFrame(`{"n":` + strconv.Itoa(n) + `,"pad":"` + strings.Repeat("x", 430) + `"}`)
	}
	c.write(join(big(1), big(2), big(3))) // burst: max(2*500, 1000) bytes
	c.expectEcho(1)
	c.expectEcho(2)
	if m := c.expectJSON("error"); m.str("message") != server.RateLimitMessage {
		t.Fatalf("error %v", m)
	}
	c.alive()
}

// TestRateLimitOff: with no limits a burst far over the defaults passes.
func TestRateLimitOff(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.MaxMessagesPerSec = 0 })
	c := dialWS(t, s.Addrs()[0].String(), "/echo")
	c.expectJSON("welcome")
	var b []byte
	for i := range 3000 {
		b = append(b, echoMsg(i)...)
	}
	c.write(b)
	for i := range 3000 {
		c.expectEcho(i)
	}
}

// tryUpgrade sends a handshake with extra header lines and returns the
// response (101 or a refusal).
func tryUpgrade(t *testing.T, addr, path string, extra ...string) (*rawClient, *http.Response) {
	t.Helper()
	c := dialTCP(t, addr)
	req, _ := upgradeRequest(addr, path, extra...)
	c.write(req)
	return c, c.readResponse()
}

func expect429(t *testing.T, resp *http.Response, what string) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%s: HTTP %d, want 429", what, resp.StatusCode)
	}
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("%s: Retry-After %q, want a number of seconds", what, resp.Header.Get("Retry-After"))
	}
}

// TestMaxConnectionsPerIP: past the cap a handshake gets 429 with
// Retry-After; closing a connection frees its place.
func TestMaxConnectionsPerIP(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.MaxConnsPerIP = 2 })
	addr := s.Addrs()[0].String()
	refused := security.Count("handshake_refused_ip_connections")
	a := dialWS(t, addr, "/echo")
	dialWS(t, addr, "/echo")
	_, resp := tryUpgrade(t, addr, "/echo")
	expect429(t, resp, "3rd connection")
	testutil.Eventually(t, func() bool { return security.Count("handshake_refused_ip_connections") > refused }) // counted after the answer
	a.conn.Close()
	testutil.Eventually(t, func() bool {
		c, resp := tryUpgrade(t, addr, "/echo")
		c.conn.Close()
		return resp.StatusCode == http.StatusSwitchingProtocols
	})
}

// TestHandshakesPerSecondPerIP: past the burst a handshake gets 429 with
// Retry-After; after it a handshake is accepted again.
func TestHandshakesPerSecondPerIP(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.HandshakesPerSecPerIP, c.HandshakeBurstPerIP = 0.5, 2 })
	addr := s.Addrs()[0].String()
	refused := security.Count("handshake_refused_rate")
	dialWS(t, addr, "/echo")
	dialWS(t, addr, "/echo")
	_, resp := tryUpgrade(t, addr, "/echo")
	expect429(t, resp, "3rd handshake at once")
	testutil.Eventually(t, func() bool { return security.Count("handshake_refused_rate") > refused }) // counted after the answer
	testutil.Eventually(t, func() bool {
		c, resp := tryUpgrade(t, addr, "/echo")
		c.conn.Close()
		return resp.StatusCode == http.StatusSwitchingProtocols
	})
}

// TestForwardedFor: X-Forwarded-For and X-Real-IP name the client only
// when the peer is a trusted proxy; otherwise every header-claimed address
// is the peer's, and a spoofed header cannot escape the per-address cap.
func TestForwardedFor(t *testing.T) {
	cases := []struct {
		name    string
		proxies string
		// for each handshake: its header line and whether it is accepted
		steps []struct {
			header string
			ok     bool
		}
	}{
		{"no trusted proxies: headers are not believed", "", []struct {
			header string
			ok     bool
		}{{"X-Forwarded-For: 198.51.100.1", true}, {"X-Forwarded-For: 198.51.100.2", false}, {"X-Real-IP: 198.51.100.3", false}}},
		{"trusted loopback proxy: each client counted apart", "127.0.0.1/32", []struct {
			header string
			ok     bool
		}{{"X-Forwarded-For: 198.51.100.1", true}, {"X-Forwarded-For: 198.51.100.2", true}, {"X-Real-IP: 198.51.100.3", true},
			{"X-Forwarded-For: 198.51.100.1", false}, {"X-Forwarded-For: 203.0.113.7, 198.51.100.2", false}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := security.ParseProxies(tc.proxies)
			if err != nil {
				t.Fatal(err)
			}
			s := testutil.Start(t, func(c *server.Config) { c.MaxConnsPerIP, c.TrustedProxies = 1, p })
			addr := s.Addrs()[0].String()
			for i, st := range tc.steps {
				_, resp := tryUpgrade(t, addr, "/echo", st.header)
				if got := resp.StatusCode == http.StatusSwitchingProtocols; got != st.ok {
					t.Fatalf("step %d (%s): HTTP %d, want accepted=%v", i, st.header, resp.StatusCode, st.ok)
				}
			}
		})
	}
}
