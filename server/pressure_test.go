package server_test

import (
	"bufio"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/internal/security"
	"partyline/internal/testutil"
	"partyline/server"
)

// silentFlood keeps n sockets connected to addr that never send a byte
// and reconnect as soon as the server drops them, until the test ends.
func silentFlood(t *testing.T, addr string, n int) {
	t.Helper()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf [512]byte
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					time.Sleep(time.Millisecond)
					continue
				}
				_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
				for { // until the server drops us (or answers 503 and drops us)
					if _, err := c.Read(buf[:]); err != nil {
						break
					}
				}
				c.Close()
			}
		}()
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// TestPendingHandshakesCannotKeepClientsOut: silent sockets that reconnect
// as soon as they are dropped, more than --max-connections, do not keep a
// real client out: each new socket pushes out the oldest pending one, so
// a client that sends its request at once gets through, every time, well
// within the handshake timeout the silent sockets would otherwise hold
// their slots for.
func TestPendingHandshakesCannotKeepClientsOut(t *testing.T) {
	const (
		maxConns   = 20
		maxPending = 6
		held       = 12 // upgraded connections kept open throughout
		bound      = 2 * time.Second
	)
	s := testutil.Start(t, func(c *server.Config) {
		c.PingInterval, c.EventLoops = 0, 2
		c.MaxConnections, c.MaxPending = maxConns, maxPending
		c.HandshakeWait = 5 * time.Second // > bound: without eviction the silent sockets win
	})
	addr := s.Addrs()[0].String()
	url := testutil.URL(s, 0, "/party")
	for range held {
		testutil.Dial(t, url)
	}
	evicted := security.Count("handshake_refused_pending_evicted")
	silentFlood(t, addr, 2*maxConns)
	testutil.Eventually(t, func() bool { return security.Count("handshake_refused_pending_evicted") > evicted+maxConns })
	if p := metric(t, s, "partyline_pending_handshakes"); p > maxPending+2 {
		t.Errorf("%v pending handshakes, budget %d", p, maxPending)
	}

	for round := range 10 {
		start := time.Now()
		tries := 0
		for {
			tries++
			c, err := testutil.TryDial(t, url, nil)
			if err == nil {
				closeAndWait(t, c)
				break
			}
			if strings.Contains(err.Error(), "HTTP 503") {
				t.Fatalf("round %d: 503 while only pending handshakes held the free slots: %v", round, err)
			}
			if time.Since(start) > bound {
				t.Fatalf("round %d: no handshake within %v (%d tries, last: %v)", round, bound, tries, err)
			}
		}
		t.Logf("round %d: handshake after %v, %d tries", round, time.Since(start).Round(time.Millisecond), tries)
	}

	// Upgraded connections still fill --max-connections: once they hold
	// every slot, a new socket gets 503 however many are pending.
	testutil.Eventually(t, func() bool { // the rounds' connections are gone
		m := scrape(t, s)
		return m["partyline_connections"]-m["partyline_pending_handshakes"] == held
	})
	overCapacity := security.Count("handshake_refused_over_capacity")
	upgraded := held
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := testutil.TryDial(t, url, nil)
		if err == nil {
			upgraded++
			continue
		}
		if strings.Contains(err.Error(), "HTTP 503") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no 503 within 10s, %d connections upgraded (last: %v)", upgraded, err)
		}
	}
	if upgraded != maxConns {
		t.Fatalf("503 with %d upgraded connections, want %d", upgraded, maxConns)
	}
	if security.Count("handshake_refused_over_capacity") <= overCapacity {
		t.Fatal("503 not recorded as handshake_refused_over_capacity")
	}
}

// closeAndWait closes c with a close handshake: once the server's close
// frame is back, the server has let go of the connection.
func closeAndWait(t *testing.T, c *testutil.Client) {
	t.Helper()
	_ = c.Conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, ""), time.Now().Add(ioWait))
	_ = c.Conn.SetReadDeadline(time.Now().Add(ioWait))
	for {
		if _, _, err := c.Conn.ReadMessage(); err != nil {
			if !websocket.IsCloseError(err, 1000) {
				t.Fatalf("close: %v", err)
			}
			break
		}
	}
	c.Conn.Close()
}

// scrape reads /metrics once: the first sample of each metric.
func scrape(t *testing.T, s *server.Server) map[string]float64 {
	t.Helper()
	resp, err := http.Get(testutil.HTTPURL(s, "/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, _, _ := strings.Cut(line, "{")
		name, _, _ = strings.Cut(name, " ")
		if _, seen := m[name]; seen {
			continue
		}
		if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
			m[name] = v
		}
	}
	return m
}

// TestMessageTimeout: a message must complete within --message-timeout of
// its first byte (a fragmented one, of its first fragment), however
// often bytes arrive; a slow message that completes in time is fine, and
// the clock restarts with each message.
func TestMessageTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	s := testutil.Start(t, func(c *server.Config) { c.PingInterval, c.MessageTimeout = 0, timeout })
	addr := s.Addrs()[0].String()

	big, _, _ := sendMessage(1000, fill)
	frame := textFrame(big)
	for _, c := range []struct {
		name  string
		first []byte   // sent at once
		drip  [][]byte // then one piece per interval, until closed
		every time.Duration
	}{
		{"header announcing 1000 bytes, 990 sent, then a byte per 40ms", frame[:len(frame)-10], chop(frame[len(frame)-10:], 1), 40 * time.Millisecond},
		{"fragmented message, a fragment per 60ms, never final", fragFrame(false, opText, `{"type":"send",`),
			repeat(fragFrame(false, opCont, `"x":1, `), 20), 60 * time.Millisecond},
		{"fragmented message, the last fragment cut short", join(fragFrame(false, opText, `{"type":`), fragFrame(true, opCont, `"create"}`)[:4]),
			nil, 0},
	} {
		t.Run(c.name+" -> 1008", func(t *testing.T) {
			t.Parallel()
			before := security.Count("message_timeout")
			rc := dialWS(t, addr, "/party")
			start := time.Now()
			rc.write(c.first)
			var f sframe
			var err error
			for i := 0; ; i++ {
				if i < len(c.drip) {
					time.Sleep(c.every)
					if _, werr := rc.conn.Write(c.drip[i]); werr != nil {
						t.Fatalf("write after %v: %v", time.Since(start), werr)
					}
				}
				d := time.Millisecond
				if i >= len(c.drip) {
					d = 3 * timeout
				}
				if f, err = rc.readFrame(d); err == nil || !errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
			}
			took := time.Since(start)
			if err != nil {
				t.Fatalf("after %v: %v, want a 1008 close", took, err)
			}
			rc.pushBack(f)
			rc.expectClose(1008, true)
			if took < timeout-30*time.Millisecond || took > timeout+time.Second {
				t.Fatalf("closed after %v, message timeout %v", took, timeout)
			}
			if security.Count("message_timeout") <= before {
				t.Fatal("message_timeout not recorded")
			}
		})
	}

	t.Run("slow but complete messages, each under the timeout -> answered", func(t *testing.T) {
		t.Parallel()
		// A server of its own with a longer timeout: sleeps stretch on a
		// loaded machine, and a message dribbled for too long is rightly closed.
		const timeout = time.Second
		s := testutil.Start(t, func(c *server.Config) { c.PingInterval, c.MessageTimeout = 0, timeout })
		rc := dialWS(t, s.Addrs()[0].String(), "/party")
		start := time.Now()
		// Three messages, each dribbled over ~0.4 of the timeout: together
		// they take longer than the timeout.
		for _, m := range []string{createMsg, `{"type":"leave"}`, createMsg} {
			f := textFrame(m)
			pieces := chop(f, (len(f)+7)/8)
			for _, p := range pieces {
				rc.write(p)
				time.Sleep(timeout * 2 / 5 / time.Duration(len(pieces)))
			}
		}
		rc.expectJSON("created")
		rc.expectJSON("created")
		if d := time.Since(start); d < timeout {
			t.Fatalf("took %v: not slow enough to test the timeout %v", d, timeout)
		}
		rc.alive()
	})
}

func chop(b []byte, n int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		k := min(n, len(b))
		out = append(out, b[:k])
		b = b[k:]
	}
	return out
}

func repeat(b []byte, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = b
	}
	return out
}

// TestOutboundBudget: members of a room that never read, fed by a sender,
// with --max-outbound-total small and the per-connection cap out of the
// way: once the accounted total passes the budget, the largest backlog is
// closed first (1008 "slow consumer"), the smaller ones stay (closing the
// largest was enough), and the total is back under the budget.
func TestOutboundBudget(t *testing.T) {
	const (
		// Steps larger than what the kernel's socket buffers may absorb
		// of a member's backlog (up to 4 MiB on loopback), so that the
		// backlogs gnet holds keep the order of the joins.
		// The kernel takes up to ~4 MiB of each backlog, which the
		// accounted total does not see, so the crossing point moves by up
		// to 12 MiB between machines: steps of 16 MiB keep "closing the
		// largest is enough" true wherever it falls.
		budget  = 50 << 20 // above big + mid + small after the joins (48 MiB)
		msgSize = 16 << 10
		step    = 16 << 20 // bytes sent between two joins
	)
	s := testutil.Start(t, func(c *server.Config) {
		c.PingInterval, c.EventLoops = 0, 2
		c.OutboundCap = 64 << 20
		c.MaxOutboundTotal = budget
		c.MaxMessagesPerSec = 0        // the sender floods on purpose: this test is about the budget
		c.CloseWait = 10 * time.Second // the closed member may read its backlog and the close frame
	})
	addr := s.Addrs()[0].String()
	msg, _, _ := sendMessage(msgSize, fill)
	frame := textFrame(msg)
	a := dialWS(t, addr, "/party")
	room := a.createRoom("a")

	// Each member joins after the previous one got step more bytes: their
	// backlogs are in the order of their names, largest first.
	names := []string{"big", "mid", "small"}
	members := map[string]*rawClient{}
	for i, name := range names {
		m := dialSmallWindow(t, addr)
		m.joinRoom(room, name)
		a.expectJSON("peer_joined")
		members[name] = m
		if i < len(names)-1 {
			for range step / msgSize {
				a.write(frame)
			}
		}
	}
	before := security.Count("outbound_budget")
	deadline := time.Now().Add(20 * time.Second)
	sent := 0
	for security.Count("outbound_budget") == before {
		if time.Now().After(deadline) {
			t.Fatalf("no budget close after %d more messages; accounted %v", sent, metric(t, s, "partyline_outbound_bytes"))
		}
		a.write(frame)
		sent++
		if sent%16 == 0 {
			time.Sleep(5 * time.Millisecond) // let the loops tick
		}
	}
	t.Logf("budget crossed after %d more messages of %d bytes", sent, msgSize)

	// The sender hears who left: the largest first, and only it (the other
	// two are far under the budget together).
	for {
		f := a.nextData()
		m := string(f.payload)
		if strings.Contains(m, `"type":"message"`) {
			continue // its own messages are not echoed, but be lenient
		}
		if !strings.Contains(m, `"type":"peer_left"`) || !strings.Contains(m, `"big"`) {
			t.Fatalf("sender got %s, want peer_left big", m)
		}
		break
	}
	testutil.Eventually(t, func() bool { return metric(t, s, "partyline_outbound_bytes") <= budget })
	if n := security.Count("outbound_budget") - before; n != 1 {
		t.Fatalf("%d connections closed for the budget, want 1 (the largest)", n)
	}

	// big, reading again, gets its backlog and then the 1008 close frame.
	for {
		f, err := members["big"].readFrame(10 * time.Second)
		if err != nil {
			t.Fatalf("big: want a 1008 close frame, got %v", err)
		}
		if f.op == opClose {
			if f.closeCode() != 1008 || !strings.Contains(string(f.payload[2:]), "slow consumer") {
				t.Fatalf("big closed with %d %q, want 1008 slow consumer", f.closeCode(), f.payload[2:])
			}
			break
		}
	}
	// The others are still members: they read their backlog, then a fresh message.
	lastMsg, last, _ := sendMessage(64, "Z")
	a.write(textFrame(lastMsg))
	for _, name := range names[1:] {
		c := members[name]
		for {
			f, err := c.readFrame(10 * time.Second)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if f.op == opClose {
				t.Fatalf("%s closed: %v", name, f)
			}
			if strings.Contains(string(f.payload), last) {
				break
			}
		}
	}

	// Every byte counted is uncounted again: with the members gone, the
	// total is back to zero.
	for _, m := range members {
		m.conn.Close()
	}
	a.conn.Close()
	testutil.Eventually(t, func() bool { return metric(t, s, "partyline_outbound_bytes") == 0 })
}
