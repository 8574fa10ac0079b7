package server

import (
	"net"
	"net/http"
	"sync"
	"time"

	"partyline/internal/security"
)

// httpConns caps the HTTP listener's connections at max without ever
// blocking Accept: the HTTP side must not take the descriptors the
// WebSocket side counts on, but a full listener must not hang either (a
// blocked Accept let 256 idle keep-alive connections stall /healthz for
// 76 s). When a new connection arrives at the cap, the connection that has
// been waiting for a request the longest (idle keep-alive, or accepted and
// not yet through its headers) is closed to make room; if every connection
// has a request in flight, the new one gets 503 and is closed.
//
// Concurrency: Accept runs on the http.Server's accept goroutine, state
// (the server's ConnState hook) and trackedConn.Close on connection
// goroutines; mu guards conns and every trackedConn's idle and since.
type httpConns struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[*trackedConn]struct{}
}

func newHTTPConns(l net.Listener, max int) *httpConns {
	return &httpConns{Listener: l, max: max, conns: map[*trackedConn]struct{}{}}
}

type trackedConn struct {
	net.Conn
	l     *httpConns
	once  sync.Once
	idle  bool      // no request in flight (StateNew or StateIdle); guarded by l.mu
	since time.Time // when it became idle; guarded by l.mu
}

// Close closes the connection and frees its place.
func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// refusal is written to a connection over the cap when none can be evicted.
const refusal = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\nContent-Length: 38\r\n\r\n{\"error\":\"too many HTTP connections\"}\n"

func (l *httpConns) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		now := time.Now()
		tc := &trackedConn{Conn: c, l: l, idle: true, since: now}
		l.mu.Lock()
		var victim *trackedConn
		full := len(l.conns) >= l.max
		if full {
			victim = l.oldestIdleLocked()
			if victim != nil {
				delete(l.conns, victim)
				victim.idle = false
			}
		}
		if !full || victim != nil {
			l.conns[tc] = struct{}{}
		}
		l.mu.Unlock()
		if victim != nil {
			_ = victim.Close()
			return tc, nil
		}
		if !full {
			return tc, nil
		}
		security.Record("http_conns_full", "addr", c.RemoteAddr().String(), "max", l.max)
		// A fresh socket's send buffer is empty: this write does not block.
		_ = c.SetWriteDeadline(now.Add(time.Second))
		_, _ = c.Write([]byte(refusal))
		_ = c.Close()
	}
}

func (l *httpConns) oldestIdleLocked() *trackedConn {
	var old *trackedConn
	for c := range l.conns {
		if c.idle && (old == nil || c.since.Before(old.since)) {
			old = c
		}
	}
	return old
}

// counts returns the open connections and how many of them wait for a
// request. Any goroutine.
func (l *httpConns) counts() (open, idle int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for c := range l.conns {
		if c.idle {
			idle++
		}
	}
	return len(l.conns), idle
}

// state is the http.Server's ConnState hook.
func (l *httpConns) state(c net.Conn, st http.ConnState) {
	tc, ok := c.(*trackedConn)
	if !ok {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateIdle:
		tc.idle, tc.since = true, time.Now()
	case http.StateActive, http.StateHijacked:
		tc.idle = false
	case http.StateClosed:
		delete(l.conns, tc)
	}
}
