// Package httpapi owns the HTTP listener's routes: /healthz, /metrics, the
// rooms API, /api/stats (live counts from the metrics), the /api endpoints
// that dialects contribute, and their guard (Guard): the
// API key, or without one the loopback-only and same-site rules; the
// optional metrics key; per-address throttling of wrong keys. Refusals
// are counted as security events (package security).
//
// Concurrency: everything runs on net/http's goroutines, never on an event
// loop; a Guard is safe from any goroutine (its limiter locks itself), and
// dialect handlers it mounts must be safe from any goroutine.
package httpapi

import (
	"crypto/subtle"
	"math"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"partyline/codec"
	"partyline/dialect"
	"partyline/internal/security"
)

// Config is what the HTTP side needs.
type Config struct {
	APIKey     string // "" = /api answers loopback clients only, and no cross-site requests
	MetricsKey string // "" = /metrics is open; else it needs this bearer key
	Metrics    prometheus.Gatherer
	Dialects   []dialect.Dialect
	Web        http.Handler // browser pages (package web), mounted at "/" behind every other route; nil: none
	// Proxies are the trusted proxies (--trusted-proxies): only a request
	// from one of them has its client taken from X-Forwarded-For or
	// X-Real-IP, for the loopback rule and the wrong-key throttle. nil:
	// none, the client is always the peer.
	Proxies *security.Proxies
}

// New returns the HTTP handler.
func New(cfg Config) http.Handler {
	h, _ := build(cfg)
	return h
}

// routeTable is the listener's mux with the patterns mounted on it, in
// order (the OpenAPI test compares them with the document).
type routeTable struct {
	*http.ServeMux
	patterns []string
}

func (t *routeTable) Handle(pattern string, h http.Handler) {
	t.patterns = append(t.patterns, pattern)
	t.ServeMux.Handle(pattern, h)
}

func (t *routeTable) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	t.Handle(pattern, http.HandlerFunc(h))
}

// build is New with the patterns it mounted (the web pages' "/" aside).
func build(cfg Config) (*http.ServeMux, []string) {
	mux := &routeTable{ServeMux: http.NewServeMux()}
	g := NewGuard(cfg.APIKey, cfg.MetricsKey)
	g.proxies = cfg.Proxies
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(health(cfg.Dialects))
	})
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", g.Metrics(promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{})))
	}
	api := g.API
	if cfg.Metrics != nil {
		mux.Handle("GET /api/stats", api(http.HandlerFunc(newStatsSource(cfg.Metrics, cfg.Dialects).serve)))
	}
	mountRooms(mux, api, cfg.Dialects)
	for _, d := range cfg.Dialects {
		if r, ok := d.(dialect.HTTPRoutes); ok {
			r.Routes(mux, api)
		}
	}
	mux.Handle("GET /api/openapi.json", http.HandlerFunc(serveOpenAPI))
	routes := mux.patterns
	if cfg.Web != nil {
		mux.Handle("/", cfg.Web)
	}
	return mux.ServeMux, routes
}

// health is the /healthz body: {"status":"ok"}, or {"status":"degraded",
// "checks":{component: reason}} when a dialect reports a problem. The
// status stays 200: the node still serves every dialect whose service is
// whole, so a load balancer should keep sending it traffic.
func health(ds []dialect.Dialect) []byte {
	var b []byte
	for _, d := range ds {
		h, ok := d.(dialect.Healther)
		if !ok {
			continue
		}
		name, err := h.Health()
		if err == nil {
			continue
		}
		if b == nil {
			b = []byte(`{"status":"degraded","checks":{`)
		} else {
			b = append(b, ',')
		}
		b = codec.AppendString(b, name)
		b = append(b, ':')
		b = codec.AppendString(b, err.Error())
	}
	if b == nil {
		return []byte(`{"status":"ok"}` + "\n")
	}
	return append(b, "}}\n"...)
}

// RequireKey wraps h with the API-key check of a Guard of its own (see
// Guard.API); New shares one Guard between every route.
func RequireKey(key string, h http.Handler) http.Handler {
	return NewGuard(key, "").API(h)
}

// Wrong-key throttling: each address may send WrongKeyBurst wrong keys at
// once, refilled at WrongKeyRate per second; past that every keyed request
// from it (right key or not) gets 429 with Retry-After until a token is back.
const (
	WrongKeyRate  = 1.0 / 6 // 10 a minute
	WrongKeyBurst = 10
)

// Guard holds the HTTP side's authentication: the API key, the metrics
// key and the per-address limiter of wrong keys they share. Safe from any
// goroutine (the limiter takes its own lock; the rest is read-only).
type Guard struct {
	apiKey, metricsKey string
	wrong              *security.Limiter
	proxies            *security.Proxies // nil: the client is the peer
}

// ClientAddr is the address of the client behind r: its peer, unless the
// peer is one of proxies and names the client in X-Forwarded-For or
// X-Real-IP (security.Proxies.ClientAddr). The zero Addr when the peer's
// address cannot be read.
func ClientAddr(r *http.Request, proxies *security.Proxies) netip.Addr {
	peer, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		a, err := netip.ParseAddr(hostOf(r.RemoteAddr))
		if err != nil {
			return netip.Addr{}
		}
		peer = netip.AddrPortFrom(a, 0)
	}
	if !proxies.Any() {
		return peer.Addr().Unmap()
	}
	return proxies.ClientAddr(peer.Addr(), r.Header.Values("X-Forwarded-For"), r.Header.Get("X-Real-IP"))
}

// NewGuard returns the guard of an API key ("": keyless, loopback only)
// and a metrics key ("": /metrics is open).
func NewGuard(apiKey, metricsKey string) *Guard {
	return &Guard{apiKey: apiKey, metricsKey: metricsKey,
		wrong: security.NewLimiter(WrongKeyRate, WrongKeyBurst, 65536)}
}

// API wraps h with the API-key check. With a key, a request needs
// "Authorization: Bearer KEY" (401 without, 403 with a wrong one, 429 once
// its address has sent too many wrong ones). Without a key only loopback
// clients are served, and only requests a browser cannot forge from
// another site: an Origin header, if present, must be a loopback origin
// and the Host a loopback name or address (DNS rebinding); 403 otherwise.
func (g *Guard) API(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.apiKey == "" {
			if a := ClientAddr(r, g.proxies); !a.IsValid() || !a.IsLoopback() {
				dialect.HTTPError(w, http.StatusForbidden, "the API answers loopback clients only when no --api-key is set")
				return
			}
			if msg := crossSite(r); msg != "" {
				security.Record("api_cross_site", "addr", r.RemoteAddr, "origin", r.Header.Get("Origin"), "host", r.Host)
				dialect.HTTPError(w, http.StatusForbidden, msg)
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		if g.checkKey(w, r, g.apiKey, "api_key") {
			h.ServeHTTP(w, r)
		}
	})
}

// Metrics wraps h with the metrics-key check (none without a metrics key).
func (g *Guard) Metrics(h http.Handler) http.Handler {
	if g.metricsKey == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.checkKey(w, r, g.metricsKey, "metrics_key") {
			h.ServeHTTP(w, r)
		}
	})
}

// checkKey answers the request itself and returns false unless it carries
// the bearer key. what names the key in security events: <what>_missing
// (API only), <what>_wrong, <what>_throttled.
func (g *Guard) checkKey(w http.ResponseWriter, r *http.Request, key, what string) bool {
	auth := r.Header.Get("Authorization")
	var got string
	if len(auth) > len("Bearer ") && strings.EqualFold(auth[:len("Bearer ")], "Bearer ") { // the scheme is case-insensitive (RFC 7235)
		got = auth[len("Bearer "):]
	}
	if got == "" {
		if what == "api_key" {
			security.Record("api_key_missing", "addr", r.RemoteAddr, "path", r.URL.Path)
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="partyline"`)
		dialect.HTTPError(w, http.StatusUnauthorized, "missing bearer "+keyName(what))
		return false
	}
	addr := ClientAddr(r, g.proxies).String()
	now := time.Now()
	if !g.wrong.AllowN(addr, 0, now) {
		security.Record(what+"_throttled", "addr", addr)
		secs := int(math.Ceil(g.wrong.RetryAfter(addr, now).Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		dialect.HTTPError(w, http.StatusTooManyRequests, "too many wrong keys from this address; retry later")
		return false
	}
	if subtle.ConstantTimeCompare([]byte(got), []byte(key)) != 1 {
		g.wrong.AllowN(addr, 1, now)
		security.Record(what+"_wrong", "addr", addr, "path", r.URL.Path)
		dialect.HTTPError(w, http.StatusForbidden, "wrong "+keyName(what))
		return false
	}
	return true
}

func keyName(what string) string {
	if what == "metrics_key" {
		return "metrics key"
	}
	return "API key"
}

// crossSite returns why a keyless API request could come from a page of
// another site, or "". Origin (sent by browsers on cross-origin requests
// and on every POST) must be a loopback origin; Host must be a loopback
// name or address, which a rebound DNS name is not. A request without
// Host (HTTP/1.0) or Origin (not a browser) passes that part.
func crossSite(r *http.Request) string {
	if o := r.Header.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !loopbackName(u.Hostname()) {
			return "cross-site request refused: Origin " + strconv.Quote(o) + " is not a loopback origin (set --api-key to call the API from elsewhere)"
		}
	}
	if r.Host != "" && !loopbackName(hostOf(r.Host)) {
		return "request refused: Host " + strconv.Quote(r.Host) + " is not a loopback name or address (set --api-key to call the API by another name)"
	}
	return ""
}

// loopbackName: localhost, *.localhost (RFC 6761), 127.0.0.0/8 or ::1.
func loopbackName(h string) bool {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// hostOf strips the port (and IPv6 brackets) from host[:port].
func hostOf(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(hostport, "["), "]")
}
