// Package web serves the browser clients embedded in the binary: an index,
// the two team pages of seed 000 (/teams/1 purple, /teams/2 pink), a party
// room page, a chat page and the admin page (/admin, a client of the /api
// routes, which hold the key), plus the JavaScript SDK they use (/sdk/) and
// /config.json, which tells a page where the WebSocket listeners are (they
// listen on other ports than the HTTP side).
//
// Handler is safe from any goroutine; it never touches an event loop.
package web

import (
	"embed"
	"encoding/json"
	"io/fs"
	"mime"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"

	sdkjs "partyline/sdk/js"
)

//go:embed assets
var assets embed.FS

// Listener is one bound WebSocket listener.
type Listener struct {
	Addr    net.Addr
	Dialect string // "" when the listener routes by path
}

// Options configure Handler.
type Options struct {
	// Listeners returns the bound WebSocket listeners, or nil while they
	// are not bound yet (/config.json then answers 503).
	Listeners func() []Listener
	// Dialects are the names of the dialects the server speaks; the index
	// links only the pages whose dialect is among them.
	Dialects []string
	// Teams is the number of teams (--teams); 0 means the default, 2.
	Teams int
	// PartyMaxClients is the party dialect's cap on maxClients
	// (--party-max-clients); 0: not shown.
	PartyMaxClients int
}

// pages maps a URL path to its HTML file and the dialect it needs.
var pages = map[string]struct{ file, dialect string }{
	"/":      {"index.html", ""},
	"/party": {"party.html", "party"},
	"/chat":  {"chat.html", "chat"},
	"/admin": {"admin.html", ""}, // the API's own guard protects its data
}

// Handler returns the web UI handler; mount it at "/" behind the API routes.
func Handler(o Options) http.Handler {
	static, _ := fs.Sub(assets, "assets")
	sdk, _ := fs.Sub(sdkjs.Dist, "dist")
	if o.Teams <= 0 {
		o.Teams = 2
	}
	return &handler{static: static, sdk: sdk, opts: o, dialects: o.Dialects}
}

type handler struct {
	static   fs.FS
	sdk      fs.FS
	opts     Options
	dialects []string
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	p := r.URL.Path
	switch {
	case p == "/config.json":
		h.config(w)
	case strings.HasPrefix(p, "/sdk/"):
		h.file(w, r, h.sdk, strings.TrimPrefix(p, "/sdk/"))
	case strings.HasPrefix(p, "/assets/"):
		h.file(w, r, h.static, strings.TrimPrefix(p, "/assets/"))
	case strings.HasPrefix(p, "/teams/") && h.speaks("teams") && h.validTeam(strings.TrimPrefix(p, "/teams/")):
		h.page(w, r, "teams.html")
	default:
		pg, ok := pages[p]
		if !ok || (pg.dialect != "" && !h.speaks(pg.dialect)) {
			http.NotFound(w, r)
			return
		}
		h.page(w, r, pg.file)
	}
}

func (h *handler) speaks(name string) bool {
	for _, n := range h.dialects {
		if n == name {
			return true
		}
	}
	return false
}

// validTeam accepts a team number 1..Teams, written without leading zeros.
func (h *handler) validTeam(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 1 && n <= h.opts.Teams && strconv.Itoa(n) == s
}

// csp allows the page's own scripts and styles and WebSocket connections to
// any host (the listeners are on other ports, which 'self' does not cover).
const csp = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; " +
	"style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (h *handler) page(w http.ResponseWriter, r *http.Request, name string) {
	w.Header().Set("Content-Security-Policy", csp)
	w.Header().Set("Referrer-Policy", "no-referrer")
	h.file(w, r, h.static, name)
}

func (h *handler) file(w http.ResponseWriter, r *http.Request, fsys fs.FS, name string) {
	if name == "" || strings.Contains(name, "..") || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		http.NotFound(w, r)
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) {
	case ".js":
		ct = "text/javascript; charset=utf-8"
	case ".ts":
		ct = "text/plain; charset=utf-8" // .d.ts: for reading, never executed
	}
	if ct == "" {
		ct = "application/octet-stream"
	}
	w.Header().Set("Content-Type", ct)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(b)
}

// configDoc is /config.json (sdk/js/src/url.ts reads it).
type configDoc struct {
	Listeners []listenerDoc `json:"listeners"`
	Dialects  []string      `json:"dialects"`
	Teams     int           `json:"teams"` // team ids are 1..Teams
	// PartyMaxClients caps a party room's maxClients (and is its value
	// when a create omits it); absent when unknown.
	PartyMaxClients int `json:"partyMaxClients,omitempty"`
}

type listenerDoc struct {
	Port    int    `json:"port"`
	Host    string `json:"host"`
	Dialect string `json:"dialect"`
}

func (h *handler) config(w http.ResponseWriter) {
	var ls []Listener
	if h.opts.Listeners != nil {
		ls = h.opts.Listeners()
	}
	w.Header().Set("Cache-Control", "no-store")
	if ls == nil {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "WebSocket listeners are not bound yet", http.StatusServiceUnavailable)
		return
	}
	doc := configDoc{Listeners: make([]listenerDoc, 0, len(ls)), Dialects: h.dialects, Teams: h.opts.Teams, PartyMaxClients: h.opts.PartyMaxClients}
	for _, l := range ls {
		host, port := "", 0
		if ta, ok := l.Addr.(*net.TCPAddr); ok {
			port = ta.Port
			if !ta.IP.IsUnspecified() && ta.IP != nil {
				host = ta.IP.String()
			}
		}
		doc.Listeners = append(doc.Listeners, listenerDoc{Port: port, Host: host, Dialect: l.Dialect})
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(doc)
}
