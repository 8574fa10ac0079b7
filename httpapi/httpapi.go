// Package httpapi owns the HTTP listener's routes: /healthz, /metrics, the
// /api endpoints that dialects contribute, and their API-key check. It runs
// on net/http's goroutines, never on an event loop; dialect handlers it
// mounts must be safe from any goroutine.
package httpapi

import (
	"crypto/subtle"
	"net"
	"net/http"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"partyline/codec"
	"partyline/dialect"
)

// Config is what the HTTP side needs.
type Config struct {
	APIKey   string // "" = /api answers loopback clients only
	Metrics  prometheus.Gatherer
	Dialects []dialect.Dialect
	Web      http.Handler // browser pages (package web), mounted at "/" behind every other route; nil: none
}

// New returns the HTTP handler.
func New(cfg Config) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(health(cfg.Dialects))
	})
	if cfg.Metrics != nil {
		mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Metrics, promhttp.HandlerOpts{}))
	}
	api := func(h http.Handler) http.Handler { return RequireKey(cfg.APIKey, h) }
	for _, d := range cfg.Dialects {
		if r, ok := d.(dialect.HTTPRoutes); ok {
			r.Routes(mux, api)
		}
	}
	if cfg.Web != nil {
		mux.Handle("/", cfg.Web)
	}
	return mux
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

// RequireKey wraps h with the API-key check: with a key, a request needs
// "Authorization: Bearer KEY" (401 without, 403 with a wrong one); without
// a key, only loopback clients are served (403 otherwise).
func RequireKey(key string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if key == "" {
			if !isLoopback(r.RemoteAddr) {
				Error(w, http.StatusForbidden, "the API answers loopback clients only when no --api-key is set")
				return
			}
			h.ServeHTTP(w, r)
			return
		}
		auth := r.Header.Get("Authorization")
		var got string
		if len(auth) > len("Bearer ") && strings.EqualFold(auth[:len("Bearer ")], "Bearer ") { // the scheme is case-insensitive (RFC 7235)
			got = auth[len("Bearer "):]
		}
		if got == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="partyline"`)
			Error(w, http.StatusUnauthorized, "missing bearer API key")
			return
		}
		if subtle.ConstantTimeCompare([]byte(got), []byte(key)) != 1 {
			Error(w, http.StatusForbidden, "wrong API key")
			return
		}
		h.ServeHTTP(w, r)
	})
}

func isLoopback(remote string) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Error writes {"error": msg} with status.
func Error(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b := codec.AppendString([]byte(`{"error":`), msg)
	_, _ = w.Write(append(b, "}\n"...))
}
