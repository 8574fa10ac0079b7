package server

import (
	"errors"
	"math"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"partyline/codec"
	"partyline/dialect"
	"partyline/internal/security"
	"partyline/routing"
)

// Abuse limits: how fast one connection may send, and how many
// connections and handshakes one address may make.
//
// Per connection (inbound rate): two token buckets, data messages and
// their payload bytes, are checked on the loop before a message reaches
// its session, without allocating. A message over either is dropped; the
// first drop of a second gets the dialect's own "rate limit exceeded"
// error (dialect.ErrorReplier), and a connection that is still being
// dropped after RateLimitGrace (every gap between two drops under a
// second) is closed with 1008 "rate limit". A dialect may carry its own
// limits (dialect.InboundRates).
//
// Per address: open connections and handshakes per second, counted by the
// client's address (ClientAddr: the peer, or with --trusted-proxies what
// the proxy's X-Forwarded-For/X-Real-IP names); over either the handshake
// gets 429 with Retry-After. Both are off by default: players behind one
// NAT share an address.

// AbuseLimits are the settings; they are embedded in Config.
type AbuseLimits struct {
	// MaxMessagesPerSec bounds the data messages one connection may send
	// per second, with bursts of MessageBurst (0: off; Defaults: 1,000 and
	// 2,000; a burst of 0 is twice the rate).
	MaxMessagesPerSec float64
	MessageBurst      int
	// MaxBytesPerSec bounds one connection's inbound payload bytes per
	// second (0: off); its burst is twice the rate, and at least
	// --max-message-size so that every allowed message can pass.
	MaxBytesPerSec int64
	// RateLimitGrace is how long a connection may stay over its rate
	// before it is closed with 1008 "rate limit" (0: 5s).
	RateLimitGrace time.Duration
	// MaxConnsPerIP bounds the connections of one client address (0: off).
	MaxConnsPerIP int
	// HandshakesPerSecPerIP bounds one address's handshakes per second,
	// with bursts of HandshakeBurstPerIP (0: off; a burst of 0 is the rate,
	// at least 1).
	HandshakesPerSecPerIP float64
	HandshakeBurstPerIP   int
	// TrustedProxies are the peers whose X-Forwarded-For and X-Real-IP
	// name the client (nil: none, the headers are never believed). The
	// HTTP API's loopback rule uses them too.
	TrustedProxies *security.Proxies
}

func abuseDefaults() AbuseLimits {
	return AbuseLimits{MaxMessagesPerSec: 1000, MessageBurst: 2000, RateLimitGrace: 5 * time.Second}
}

func (a *AbuseLimits) validate() error {
	if a.MaxMessagesPerSec < 0 || a.MessageBurst < 0 || a.MaxBytesPerSec < 0 || a.RateLimitGrace < 0 ||
		a.MaxConnsPerIP < 0 || a.HandshakesPerSecPerIP < 0 || a.HandshakeBurstPerIP < 0 ||
		math.IsNaN(a.MaxMessagesPerSec) || math.IsNaN(a.HandshakesPerSecPerIP) {
		return errors.New("rate and address limits must not be negative")
	}
	if a.RateLimitGrace == 0 {
		a.RateLimitGrace = abuseDefaults().RateLimitGrace
	}
	return nil
}

// inbound is one dialect's per-connection limits, resolved at start.
type inbound struct {
	msgRate, msgBurst   float64 // 0 rate: off
	byteRate, byteBurst float64
	reply               *routing.Frame // the dialect's "rate limit exceeded", nil: none
}

func (in *inbound) off() bool { return in == nil || (in.msgRate <= 0 && in.byteRate <= 0) }

// RateLimitMessage is the text of the error reply to a dropped message.
const RateLimitMessage = "rate limit exceeded"

// inboundFor resolves d's limits from the server's and d's overrides.
func inboundFor(cfg *Config, d dialect.Dialect) *inbound {
	r := dialect.Rates{MessagesPerSecond: cfg.MaxMessagesPerSec, MessageBurst: cfg.MessageBurst, BytesPerSecond: cfg.MaxBytesPerSec}
	if o, ok := d.(dialect.InboundRates); ok {
		r = o.InboundRates(r)
	}
	in := &inbound{msgRate: max(r.MessagesPerSecond, 0), byteRate: float64(max(r.BytesPerSecond, 0))}
	in.msgBurst = float64(r.MessageBurst)
	if in.msgBurst <= 0 {
		in.msgBurst = max(2*in.msgRate, 1)
	}
	in.byteBurst = max(2*in.byteRate, float64(cfg.MaxMessageSize))
	if e, ok := d.(dialect.ErrorReplier); ok && !in.off() {
		in.reply = e.ErrorFrame(RateLimitMessage)
	}
	return in
}

// tokens is a token bucket whose rate and burst live elsewhere. Loop only.
type tokens struct {
	n  float64
	at int64 // unix nanos of the last refill, 0: never used (full)
}

// take spends n tokens at now if there are that many.
func (t *tokens) take(n, rate, burst float64, now int64) bool {
	switch {
	case t.at == 0:
		t.n = burst
	case now > t.at:
		t.n = min(burst, t.n+float64(now-t.at)*rate/1e9)
	}
	t.at = now
	if t.n < n {
		return false
	}
	t.n -= n
	return true
}

// rateState is a connection's inbound rate. Loop only.
type rateState struct {
	lim       *inbound
	msgs      tokens
	bytes     tokens
	overSince int64 // first drop of the current run of drops, 0: none
	lastDrop  int64
	lastReply int64
}

// allow spends a message of n payload bytes at now, and reports whether
// it is within the limits. It does not allocate.
func (r *rateState) allow(n int, now int64) bool {
	l := r.lim
	if l.off() {
		return true
	}
	if l.msgRate > 0 && !r.msgs.take(1, l.msgRate, l.msgBurst, now) {
		return false
	}
	// A message the byte bucket refuses has spent its message token: it
	// was sent all the same.
	return l.byteRate <= 0 || r.bytes.take(float64(n), l.byteRate, l.byteBurst, now)
}

// dropped records a refused message at now and says what to do: reply
// with the dialect's error (at most once a second), or close (the
// connection has been over its limit for grace, with no gap of a second
// between drops). The first drop of a run reports start.
func (r *rateState) dropped(now int64, grace time.Duration) (start, reply, close bool) {
	if r.overSince == 0 || now-r.lastDrop > int64(time.Second) {
		r.overSince, start = now, true
	}
	r.lastDrop = now
	if now-r.overSince >= int64(grace) {
		return start, false, true
	}
	if r.lim.reply != nil && (r.lastReply == 0 || now-r.lastReply >= int64(time.Second)) {
		r.lastReply, reply = now, true
	}
	return start, reply, false
}

// admitMessage checks a data message against the connection's inbound
// rate and handles a refusal; it reports whether the session gets the
// message. Loop only; no allocation unless a run of drops starts or ends
// in a close.
func (c *conn) admitMessage(n int) bool {
	r := &c.rate
	if r.lim.off() {
		return true
	}
	now := c.srv.now()
	if r.allow(n, now) {
		return true
	}
	c.srv.metrics.rateLimited.Inc()
	start, reply, close := r.dropped(now, c.srv.cfg.RateLimitGrace)
	switch {
	case close:
		security.Record("rate_limit_close", "remote", c.gc.RemoteAddr())
		c.fail(codec.ClosePolicyViolation, "rate limit", false)
	case start:
		security.Record("rate_limited", "remote", c.gc.RemoteAddr())
	}
	if reply {
		c.Send(r.lim.reply, true)
	}
	return false
}

// addrGate counts connections and handshakes by client address. Safe from
// any goroutine.
type addrGate struct {
	proxies  *security.Proxies
	maxConns int
	rate     *security.Limiter // handshakes by address; nil: off

	mu    sync.Mutex // guards conns
	conns map[netip.Addr]int
}

func newAddrGate(a *AbuseLimits) *addrGate {
	g := &addrGate{proxies: a.TrustedProxies, maxConns: a.MaxConnsPerIP, conns: map[netip.Addr]int{}}
	if a.HandshakesPerSecPerIP > 0 {
		burst := a.HandshakeBurstPerIP
		if burst <= 0 {
			burst = int(math.Ceil(a.HandshakesPerSecPerIP))
		}
		g.rate = security.NewLimiter(a.HandshakesPerSecPerIP, burst, 65536)
	}
	return g
}

// errPerIPConns refuses a handshake over --max-connections-per-ip.
var errPerIPConns = ws.RejectConnectionError(ws.RejectionStatus(429), ws.RejectionReason("too many connections from this address"),
	ws.RejectionHeader(ws.HandshakeHeaderString("Retry-After: 1\r\n")))

// admit counts a handshake of client and, unless it is refused, one more
// connection of it (which release gives back). It returns the 429
// rejection and the security cause when refused.
func (g *addrGate) admit(client netip.Addr, now time.Time) (cause string, err error) {
	if g.rate != nil {
		key := client.String()
		if !g.rate.AllowN(key, 1, now) {
			secs := int(math.Ceil(g.rate.RetryAfter(key, now).Seconds()))
			return "handshake_refused_rate", ws.RejectConnectionError(ws.RejectionStatus(429), ws.RejectionReason("too many handshakes from this address"),
				ws.RejectionHeader(ws.HandshakeHeaderString("Retry-After: "+strconv.Itoa(max(secs, 1))+"\r\n")))
		}
	}
	if g.maxConns <= 0 {
		return "", nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.conns[client] >= g.maxConns {
		return "handshake_refused_ip_connections", errPerIPConns
	}
	g.conns[client]++
	return "", nil
}

// release gives back a connection admit counted.
func (g *addrGate) release(client netip.Addr) {
	if g.maxConns <= 0 {
		return
	}
	g.mu.Lock()
	if n := g.conns[client]; n > 1 {
		g.conns[client] = n - 1
	} else {
		delete(g.conns, client)
	}
	g.mu.Unlock()
}

// admitAddr finds the handshake's client address (for the request and
// the per-address limits) and counts it against them once per
// connection: a deferred handshake's second run is not counted again.
// Loop only.
func (c *conn) admitAddr(h *hsState) error {
	g := c.srv.gate
	peer := security.PeerAddr(c.gc.RemoteAddr())
	client := g.proxies.ClientAddr(peer, h.xff, h.realIP)
	if client == peer {
		h.req.RemoteAddr = c.gc.RemoteAddr().String()
	} else {
		h.req.RemoteAddr = netip.AddrPortFrom(client, 0).String()
	}
	if c.addrDone {
		return nil
	}
	c.addrDone = true
	cause, err := g.admit(client, time.Now())
	if err != nil {
		h.cause = cause
		return err
	}
	if g.maxConns > 0 {
		c.client, c.addrHeld = client, true
	}
	return nil
}

// releaseAddr gives back the connection's place in its address's count.
// Loop only (OnClose).
func (c *conn) releaseAddr() {
	if c.addrHeld {
		c.addrHeld = false
		c.srv.gate.release(c.client)
	}
}
