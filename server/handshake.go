package server

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/gobwas/ws"

	"partyline/dialect"
	"partyline/internal/security"
)

var headerEnd = []byte("\r\n\r\n")

// hsState is the per-loop scratch of the handshake in progress: the
// upgrader's callbacks write into it. Loop only.
type hsState struct {
	up   ws.Upgrader
	in   bytes.Reader
	out  bytes.Buffer
	bind *binding
	d    dialect.Dialect
	req  dialect.Request
	// decided carries the result of a deferred Accept into the second run
	// of the upgrade; deferred receives a new deferral.
	decided  *decision
	deferred *dialect.Deferred
	// cause names a refusal for the security record (see conn.refused).
	cause string
	// c is the connection whose handshake this is; trusted is set when
	// its peer is a trusted proxy, whose xff (X-Forwarded-For lines) and
	// realIP (X-Real-IP) are then kept for admitAddr.
	c       *conn
	trusted bool
	xff     []string
	realIP  string
	// flate is the permessage-deflate agreement (compression.go).
	flate flateParams
	// plain is the bound dialect's answer to a plain HTTP request (see
	// dialect.PlainHTTP), written instead of an upgrade.
	plain []byte
}

func (h *hsState) Read(p []byte) (int, error)  { return h.in.Read(p) }
func (h *hsState) Write(p []byte) (int, error) { return h.out.Write(p) }

func newHS(s *Server) *hsState {
	h := &hsState{}
	h.up = ws.Upgrader{
		OnRequest: func(uri []byte) error {
			path, rawQuery, _ := strings.Cut(string(uri), "?")
			h.req.Path, h.req.RawQuery = path, rawQuery
			if h.decided != nil {
				if p, ok := h.decided.value.(plainReply); ok {
					h.plain = p
					return errPlain
				}
			}
			if w := plainWork(h.bind, path); w != nil {
				h.deferred = &dialect.Deferred{Check: func() (any, error) { return plainReply(w()), nil }}
				return errDeferred
			}
			if h.plain = plainAnswer(h.bind, path, false); h.plain != nil {
				return errPlain
			}
			d, param, err := s.registry.route(h.bind, path)
			if err != nil {
				h.cause = "handshake_refused_not_found"
				if err != errNotFound {
					h.cause = "handshake_refused_bad_request"
				}
				return err
			}
			h.d, h.req.Param = d, param
			return nil
		},
		OnHeader: func(key, value []byte) error {
			switch {
			case bytes.EqualFold(key, []byte("Origin")):
				h.req.Origin = string(value)
				if !s.originAllowed(h.req.Origin) {
					h.cause = "handshake_refused_origin"
					return ws.RejectConnectionError(ws.RejectionStatus(403), ws.RejectionReason("origin not allowed"))
				}
			case bytes.EqualFold(key, []byte("Authorization")):
				h.req.Authorization = string(value)
			case bytes.EqualFold(key, []byte("User-Agent")):
				h.req.UserAgent = string(value)
			case bytes.EqualFold(key, []byte("Cookie")):
				if h.req.Cookie != "" { // HTTP/1.1 clients send one, RFC 6265 section 5.4
					h.req.Cookie += "; " + string(value)
				} else {
					h.req.Cookie = string(value)
				}
			case h.trusted && bytes.EqualFold(key, []byte("X-Forwarded-For")):
				h.xff = append(h.xff, string(value))
			case h.trusted && bytes.EqualFold(key, []byte("X-Real-IP")):
				h.realIP = string(value)
			}
			return nil
		},
		OnBeforeUpgrade: func() (ws.HandshakeHeader, error) {
			if err := h.c.admitAddr(h); err != nil {
				return nil, err
			}
			var err error
			if h.decided != nil {
				err = h.decided.err
				h.req.Accepted = h.decided.value
			} else {
				err = h.d.Accept(&h.req)
			}
			if d, ok := err.(*dialect.Deferred); ok {
				h.deferred = d
				return nil, errDeferred
			}
			if err != nil {
				h.cause = "handshake_refused_dialect"
				var r *dialect.Refusal
				if errors.As(err, &r) {
					if r.Status == 503 {
						h.cause = "handshake_refused_busy"
					}
					return nil, ws.RejectConnectionError(ws.RejectionStatus(r.Status), ws.RejectionReason(r.Reason))
				}
				return nil, ws.RejectConnectionError(ws.RejectionStatus(400), ws.RejectionReason(err.Error()))
			}
			return ws.HandshakeHeaderString(""), nil
		},
	}
	if s.cfg.Compression {
		h.up.Negotiate = h.negotiate
	}
	return h
}

var (
	errDeferred = errors.New("deferred")
	errPlain    = errors.New("answered as plain HTTP")
)

// requestPath is the path of the request line "METHOD URI HTTP/x" at the
// start of req, without the query ("" if there is none).
func requestPath(req []byte) string {
	line, _, _ := bytes.Cut(req, []byte("\r\n"))
	f := bytes.Fields(line)
	if len(f) != 3 {
		return ""
	}
	path, _, _ := bytes.Cut(f[1], []byte("?"))
	return string(path)
}

// plainAnswer is the dialect bound to b's answer to a plain HTTP request
// for path, or nil (see dialect.PlainHTTP).
func plainAnswer(b *binding, path string, fallback bool) []byte {
	if b == nil || b.dialect == nil {
		return nil
	}
	if p, ok := b.dialect.(dialect.PlainHTTP); ok {
		return p.ServePlain(path, fallback)
	}
	return nil
}

// plainReply is a deferred plain HTTP answer (dialect.PlainHTTPDeferred),
// carried into the handshake's second run as the decision's value.
type plainReply []byte

// plainWork is the blocking work behind the bound dialect's answer to a
// plain HTTP request for path, or nil.
func plainWork(b *binding, path string) func() []byte {
	if b == nil || b.dialect == nil {
		return nil
	}
	if p, ok := b.dialect.(dialect.PlainHTTPDeferred); ok {
		return p.PlainWork(path)
	}
	return nil
}

// hsResult is what one handshake attempt decided.
type hsResult uint8

const (
	hsWait     hsResult = iota // the request is incomplete, or its decision deferred
	hsUpgraded                 // upgraded; n bytes consumed
	hsRefused                  // a response was written; hang up
)

// handshake parses a complete HTTP request from buf (the bytes gnet has
// buffered) and upgrades c. Loop only.
func (c *conn) handshake(buf []byte) (res hsResult, n int) {
	end := bytes.Index(buf, headerEnd)
	if end < 0 {
		if len(buf) > c.srv.cfg.MaxHandshake {
			return c.tooLarge(), 0
		}
		return hsWait, 0
	}
	n = end + len(headerEnd)
	if n > c.srv.cfg.MaxHandshake {
		return c.tooLarge(), 0
	}
	h := c.loop.hs
	h.in.Reset(buf[:n])
	h.out.Reset()
	h.bind, h.d, h.req = c.bind, nil, dialect.Request{}
	h.decided, h.deferred, h.cause, h.plain = c.decided, nil, "handshake_refused_bad_request", nil
	h.c, h.xff, h.realIP = c, h.xff[:0], ""
	h.trusted = c.srv.gate.proxies.Any() && c.srv.gate.proxies.Trusted(security.PeerAddr(c.gc.RemoteAddr()))
	h.flate = flateParams{}
	_, err := h.up.Upgrade(h)
	c.decided = nil
	if err == errDeferred {
		c.deferAccept(h.deferred.Check)
		return hsWait, 0
	}
	if err == errPlain {
		c.writeNow(h.plain)
		c.srv.metrics.closeReason(0, "plain http")
		return hsRefused, 0
	}
	if err == ws.ErrHandshakeBadMethod { // not GET: no WebSocket, but maybe plain HTTP
		path := requestPath(buf[:n])
		if p := plainAnswer(h.bind, path, false); p != nil || path != "" {
			if p == nil {
				p = plainAnswer(h.bind, path, true)
			}
			if p != nil {
				c.writeNow(p)
				c.srv.metrics.closeReason(0, "plain http")
				return hsRefused, 0
			}
		}
	}
	if err != nil {
		switch {
		case errors.Is(err, ws.ErrHandshakeBadUpgrade), errors.Is(err, ws.ErrHandshakeBadConnection):
			if p := plainAnswer(h.bind, h.req.Path, true); p != nil {
				c.writeNow(p)
				c.srv.metrics.closeReason(0, "plain http")
				return hsRefused, 0
			}
			c.writeNow(httpResponse(426, "this is a WebSocket endpoint: upgrade required"))
		case h.out.Len() > 0:
			c.writeNow(h.out.Bytes())
		default:
			c.writeNow(httpResponse(400, err.Error()))
		}
		c.srv.metrics.handshakeFail.Inc()
		c.srv.metrics.closeReason(0, "handshake refused")
		c.refused(h.cause)
		return hsRefused, 0
	}
	req := h.req
	c.req = &req
	c.rate.lim = c.srv.inbound[h.d]
	c.state = stateOpen
	c.loop.removePending(c)
	c.srv.upgraded.Add(1)
	c.deadline = 0
	c.dec.MaxMessage = c.srv.cfg.MaxMessageSize
	if h.flate.on {
		c.dec.Deflate, c.zWin = true, h.flate.window
	}
	if p := c.srv.cfg.PingInterval; p > 0 {
		// First ping at a random point of the interval's second half: spreads load.
		c.nextPing = c.srv.now() + int64(p)/2 + c.srv.jitter(int64(p)/2)
	}
	c.rearm()
	// The session opens before the 101 leaves: once a client sees its
	// handshake succeed, the dialect has registered it (rooms, broadcast
	// lists), so nothing sent to it after that is missed. Frames Open
	// queues are flushed after this write.
	c.sess = h.d.Open(c)
	c.writeNow(h.out.Bytes())
	c.srv.metrics.handshakes.Inc()
	return hsUpgraded, n
}

// tooLarge refuses a request over --max-handshake-size. Loop only.
func (c *conn) tooLarge() hsResult {
	c.writeNow(httpResponse(431, "request header too large"))
	c.srv.metrics.closeReason(0, "handshake too large")
	c.refused("handshake_refused_too_large")
	return hsRefused
}

// refused records a refused handshake as a security event. cause is one
// of a fixed set (a metric label): handshake_refused_ followed by origin,
// not_found, bad_request, too_large, dialect, busy, rate (per-address
// handshakes) or ip_connections (per-address connections); timeout,
// over_capacity and pending_evicted are recorded where they happen.
func (c *conn) refused(cause string) {
	security.Record(cause, "remote", c.gc.RemoteAddr())
}

func httpResponse(status int, body string) []byte {
	var extra string
	if status == 426 {
		extra = "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
	}
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\n%sContent-Type: text/plain; charset=utf-8\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s\n",
		status, statusText(status), extra, len(body)+1, body)
}

func statusText(code int) string {
	if t := http.StatusText(code); t != "" {
		return t
	}
	return strconv.Itoa(code)
}

// deferAccept runs a dialect's blocking handshake check on the bounded
// worker pool and resumes the handshake on the loop with its result. When
// the pool is saturated the handshake is refused with 503. Loop only.
func (c *conn) deferAccept(check func() (any, error)) {
	c.accepting = true
	select {
	case c.srv.acceptSem <- struct{}{}:
	default:
		c.decide(nil, dialect.Refuse(503, "server busy: try again"))
		return
	}
	go func() {
		v, err := check()
		<-c.srv.acceptSem
		c.Do(func() { c.decide(v, err) })
	}()
}

// decide resumes a deferred handshake with the check's result. Loop only.
func (c *conn) decide(v any, err error) {
	c.accepting = false
	c.decided = &decision{v, err}
	c.resume()
}

// decision is a deferred check's result, kept for the handshake's second run.
type decision struct {
	value any
	err   error
}

// resume re-runs the handshake on the buffered request after a deferred
// decision, then decodes any frames that arrived meanwhile. Loop only.
func (c *conn) resume() {
	if c.state != stateHandshake {
		return
	}
	buf, _ := c.gc.Peek(-1)
	res, n := c.handshake(buf)
	switch res {
	case hsRefused:
		_, _ = c.gc.Discard(-1)
		c.hangUp()
	case hsUpgraded:
		if c.readFrames(buf, n) {
			c.hangUp()
		}
	}
}
