package httpapi_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"partyline/httpapi"
	"partyline/internal/testutil"
	"partyline/server"
)

// rawConn dials the server's HTTP listener.
func rawConn(t *testing.T, s *server.Server) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", s.HTTPAddr().String(), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// keepAliveGet sends GET path on c and reads the response, leaving the
// connection open and idle.
func keepAliveGet(c net.Conn, br *bufio.Reader, path string) (int, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: localhost\r\n\r\n", path); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// awaitIdle waits until the server counts n idle HTTP connections: the
// server marks a connection idle after it wrote the answer the client has
// already read, so "oldest idle" is only well defined once it has.
func awaitIdle(t *testing.T, s *server.Server, n int) {
	t.Helper()
	testutil.Eventually(t, func() bool { _, idle := s.HTTPConns(); return idle == n })
}

// awaitNoConns waits until the server has let go of every HTTP
// connection. A client that read a "Connection: close" answer, or closed
// its side, is done before the server is: the server drops the connection
// from its count only when its goroutine closes it, which on a busy
// machine comes after the client's next connections.
func awaitNoConns(t *testing.T, s *server.Server) {
	t.Helper()
	testutil.Eventually(t, func() bool { open, _ := s.HTTPConns(); return open == 0 })
}

// closedWithin waits up to d for the peer to close c (EOF or reset) and
// reports whether it did.
func closedWithin(c net.Conn, d time.Duration) bool {
	_ = c.SetReadDeadline(time.Now().Add(d))
	var b [512]byte
	for {
		_, err := c.Read(b[:])
		if err == nil {
			continue
		}
		var ne net.Error
		return !(errors.As(err, &ne) && ne.Timeout())
	}
}

// timedHealthz GETs /healthz on a new connection and returns how long the
// answer took.
func timedHealthz(t *testing.T, s *server.Server) time.Duration {
	t.Helper()
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	t0 := time.Now()
	resp, err := client.Get(testutil.HTTPURL(s, "/healthz"))
	if err != nil {
		t.Fatalf("/healthz: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
	return time.Since(t0)
}

// TestHTTPIdleConnsDoNotStarve: 300 kept-alive idle connections (more than
// the default cap of 256) do not hold up a new /healthz, and the cap
// closed the oldest idle ones to make room.
func TestHTTPIdleConnsDoNotStarve(t *testing.T) {
	s := testutil.Start(t, nil)
	const n = 300
	conns := make([]net.Conn, n)
	for i := range conns {
		c := rawConn(t, s)
		code, err := keepAliveGet(c, bufio.NewReader(c), "/healthz")
		if err != nil || code != 200 {
			t.Fatalf("idle connection %d: %d %v", i, code, err)
		}
		conns[i] = c
		awaitIdle(t, s, min(i+1, 256)) // the default cap closes the oldest past 256
	}
	for i := range 5 {
		if d := timedHealthz(t, s); d > 100*time.Millisecond {
			t.Fatalf("/healthz #%d with %d idle keep-alive connections took %v, want < 100ms", i, n, d)
		}
	}
	if !closedWithin(conns[0], 2*time.Second) {
		t.Fatal("the oldest idle connection is still open past the cap")
	}
	if closedWithin(conns[n-1], 50*time.Millisecond) {
		t.Fatal("the newest idle connection was closed")
	}
}

// TestHTTPConnCap crosses a small cap: the oldest idle connection makes
// room; when every connection has a request in flight, a new one gets 503.
func TestHTTPConnCap(t *testing.T) {
	const max = 4
	s := testutil.Start(t, func(c *server.Config) { c.MaxHTTPConns = max })
	full := securityCount(t, s, "http_conns_full")
	// The /metrics connection still counts until the server closes it: at
	// the cap it would make the newest connection evict the oldest idle one.
	awaitNoConns(t, s)
	var idle []net.Conn
	for range max {
		c := rawConn(t, s)
		if code, err := keepAliveGet(c, bufio.NewReader(c), "/healthz"); err != nil || code != 200 {
			t.Fatalf("setup: %d %v", code, err)
		}
		idle = append(idle, c)
		awaitIdle(t, s, len(idle))
	}
	if d := timedHealthz(t, s); d > 100*time.Millisecond {
		t.Fatalf("/healthz at the cap took %v", d)
	}
	if !closedWithin(idle[0], 2*time.Second) {
		t.Fatal("oldest idle connection not closed when a new one came at the cap")
	}
	for _, c := range idle {
		c.Close()
	}
	awaitNoConns(t, s)
	// max requests in flight: headers sent, body announced and withheld;
	// the server has read every header (none of them waits for a request).
	busy := make([]net.Conn, 0, max)
	for range max {
		c := rawConn(t, s)
		fmt.Fprintf(c, "POST /api/broadcast HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
		busy = append(busy, c)
	}
	testutil.Eventually(t, func() bool { open, idle := s.HTTPConns(); return open == max && idle == 0 })
	c := rawConn(t, s)
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("a new connection with every one busy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("a new connection with every one busy: %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	for _, c := range busy {
		c.Close()
	}
	// The busy connections are closed; wait until the server has let go of
	// them, or /metrics itself would meet the cap.
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	testutil.Eventually(t, func() bool {
		resp, err := client.Get(testutil.HTTPURL(s, "/healthz"))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	if after := securityCount(t, s, "http_conns_full"); after <= full {
		t.Fatalf("http_conns_full stayed at %v after a 503", after)
	}
}

// TestHTTPTimeouts: a slowloris dribbling its headers is cut by the
// read-header timeout, and an idle keep-alive connection by the idle one.
func TestHTTPTimeouts(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) {
		c.HTTPTimeouts = server.HTTPTimeouts{ReadHeader: 300 * time.Millisecond, Idle: 300 * time.Millisecond}
	})
	t.Run("slowloris", func(t *testing.T) {
		c := rawConn(t, s)
		t0 := time.Now()
		if _, err := io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n"); err != nil {
			t.Fatal(err)
		}
		var cut time.Duration
		for i := 0; i < 100; i++ { // a header byte every 50ms: 5s if never cut
			_ = c.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := io.WriteString(c, "X"); err != nil {
				cut = time.Since(t0)
				break
			}
			if closedWithin(c, 50*time.Millisecond) {
				cut = time.Since(t0)
				break
			}
		}
		if cut == 0 || cut > 2*time.Second {
			t.Fatalf("dribbled headers not cut (after %v), read-header timeout 300ms", cut)
		}
	})
	t.Run("idle keep-alive", func(t *testing.T) {
		c := rawConn(t, s)
		if code, err := keepAliveGet(c, bufio.NewReader(c), "/healthz"); err != nil || code != 200 {
			t.Fatalf("%d %v", code, err)
		}
		t0 := time.Now()
		if !closedWithin(c, 3*time.Second) {
			t.Fatal("idle keep-alive connection still open 3s later, idle timeout 300ms")
		}
		if d := time.Since(t0); d < 200*time.Millisecond {
			t.Fatalf("closed after %v, before the idle timeout", d)
		}
	})
}

// TestKeylessCrossSite: without an API key, a loopback client is served
// unless its request could come from another site: a non-loopback Origin
// or a Host that is not a loopback name (DNS rebinding). With a key the
// key is the authentication and neither rule applies.
func TestKeylessCrossSite(t *testing.T) {
	keyless := testutil.Start(t, nil)
	keyed := testutil.Start(t, func(c *server.Config) { c.APIKey = "s3cret" })
	cases := []struct {
		name         string
		s            *server.Server
		origin, host string
		auth         string
		want         int
	}{
		{"no Origin", keyless, "", "", "", 200},
		{"loopback Origin localhost", keyless, "http://localhost:8081", "", "", 200},
		{"loopback Origin 127.0.0.1", keyless, "http://127.0.0.1:9", "", "", 200},
		{"loopback Origin other 127/8", keyless, "http://127.3.4.5", "", "", 200},
		{"loopback Origin [::1]", keyless, "http://[::1]:8081", "", "", 200},
		{"loopback Origin *.localhost", keyless, "https://app.localhost:3000", "", "", 200},
		{"evil Origin", keyless, "http://evil.example", "", "", 403},
		{"evil Origin posing as localhost", keyless, "http://localhost.evil.example", "", "", 403},
		{"null Origin", keyless, "null", "", "", 403},
		{"private-address Origin", keyless, "http://10.0.0.1", "", "", 403},
		{"Host localhost", keyless, "", "localhost", "", 200},
		{"Host localhost with port", keyless, "", "localhost:8081", "", 200},
		{"Host *.localhost", keyless, "", "x.localhost:1", "", 200},
		{"Host 127.0.0.2", keyless, "", "127.0.0.2:8081", "", 200},
		{"Host [::1]", keyless, "", "[::1]:8081", "", 200},
		{"evil Host", keyless, "", "evil.example", "", 403},
		{"evil Host with port", keyless, "", "evil.example:8081", "", 403},
		{"evil Host with loopback Origin", keyless, "http://localhost", "evil.example", "", 403},
		{"key: evil Origin", keyed, "http://evil.example", "", "Bearer s3cret", 200},
		{"key: evil Host", keyed, "", "evil.example", "Bearer s3cret", 200},
		{"key: evil Origin, no key", keyed, "http://evil.example", "", "", 401},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := securityCount(t, tc.s, "api_cross_site")
			req, err := http.NewRequest("POST", testutil.HTTPURL(tc.s, "/api/broadcast"), strings.NewReader(`{"x":1}`))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "text/plain") // a "simple" request: no CORS preflight
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.host != "" {
				req.Host = tc.host
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d %s, want %d", resp.StatusCode, b, tc.want)
			}
			after := securityCount(t, tc.s, "api_cross_site")
			if tc.want == 403 {
				if !strings.Contains(string(b), `"error":`) {
					t.Fatalf("403 body %q: want a JSON error", b)
				}
				if after <= before {
					t.Fatalf("api_cross_site stayed at %v", after)
				}
			}
		})
	}
}

// securityCount reads partyline_security_events_total{reason} from /metrics.
func securityCount(t *testing.T, s *server.Server, reason string, auth ...string) float64 {
	t.Helper()
	a := ""
	if len(auth) > 0 {
		a = auth[0]
	}
	code, body, _ := get(t, testutil.HTTPURL(s, "/metrics"), a)
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	v, _ := sample(body, "partyline_security_events_total", `reason="`+reason+`"`)
	return v
}

// TestMetricsKey: with --metrics-key, /metrics needs it (401 without, 403
// wrong, counted as metrics_key_wrong); /healthz stays open.
func TestMetricsKey(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.MetricsKey = "m3trics" })
	url := testutil.HTTPURL(s, "/metrics")
	before := securityCount(t, s, "metrics_key_wrong", "Bearer m3trics")
	for _, tc := range []struct {
		auth string
		want int
	}{{"", 401}, {"Bearer nope", 403}, {"Bearer m3trics", 200}, {"bearer m3trics", 200}} {
		code, body, h := get(t, url, tc.auth)
		if code != tc.want {
			t.Fatalf("/metrics with %q: %d, want %d", tc.auth, code, tc.want)
		}
		if code == 401 && h.Get("WWW-Authenticate") == "" {
			t.Fatal("401 without WWW-Authenticate")
		}
		if code == 200 && !strings.Contains(body, "partyline_connections") {
			t.Fatal("/metrics body without the metrics")
		}
	}
	if after := securityCount(t, s, "metrics_key_wrong", "Bearer m3trics"); after != before+1 {
		t.Fatalf("metrics_key_wrong went %v -> %v, want +1", before, after)
	}
	if code, _, _ := get(t, testutil.HTTPURL(s, "/healthz"), ""); code != 200 {
		t.Fatalf("/healthz with a metrics key: %d", code)
	}
}

// TestWrongKeyThrottled: an address that sends WrongKeyBurst wrong API
// keys gets 429 with Retry-After, even with the right key, and every
// refusal is counted.
func TestWrongKeyThrottled(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.APIKey = "s3cret" })
	url := testutil.HTTPURL(s, "/api/rooms/NOPE")
	counts := func() (missing, wrong, throttled float64) {
		return securityCount(t, s, "api_key_missing"), securityCount(t, s, "api_key_wrong"), securityCount(t, s, "api_key_throttled")
	}
	m0, w0, th0 := counts()
	if code, _, _ := get(t, url, ""); code != 401 {
		t.Fatalf("no key: %d", code)
	}
	for i := range httpapi.WrongKeyBurst {
		if code, _, _ := get(t, url, fmt.Sprintf("Bearer wrong%d", i)); code != 403 {
			t.Fatalf("wrong key %d: %d, want 403", i, code)
		}
	}
	for _, auth := range []string{"Bearer wrong-again", "Bearer s3cret"} {
		code, body, h := get(t, url, auth)
		if code != http.StatusTooManyRequests || h.Get("Retry-After") == "" || !strings.Contains(body, `"error"`) {
			t.Fatalf("%q after the burst: %d %q Retry-After %q, want 429 with Retry-After", auth, code, body, h.Get("Retry-After"))
		}
	}
	m1, w1, th1 := counts()
	if m1-m0 != 1 || w1-w0 != 10 || th1-th0 != 2 {
		t.Fatalf("security events: missing +%v wrong +%v throttled +%v, want +1 +10 +2", m1-m0, w1-w0, th1-th0)
	}
}
