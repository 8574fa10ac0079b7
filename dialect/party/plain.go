package party

import (
	"fmt"
	"net/url"
	"os"
	"runtime/metrics"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"partyline/codec"
	"partyline/dialect"
	"partyline/routing"
)

// Plain HTTP on a WebSocket listener bound to party or party-v2, as
// Party-Sockets answers on its one port (from 1.12): /health, /metrics
// (party_sockets_*) and /room/<code>, and for party-v2 a text snapshot
// instead of 426. Everything here runs on an event loop: it reads lock-free
// room snapshots and a small mutex-guarded table, never blocks.

// Version is the "version" label of the party_sockets_* metrics.
var Version = "partyline"

const (
	maxOrigins    = 500 // origins tracked by the per-origin counters
	originSeries  = 100 // origins with their own series; the rest are "__other__"
	unknownOrigin = "unknown"
)

// originOf is the handshake Origin of c, "unknown" when absent.
func originOf(c dialect.Conn) string {
	if o := c.Request().Origin; o != "" {
		return o
	}
	return unknownOrigin
}

// ServePlain implements dialect.PlainHTTP.
func (d *Dialect) ServePlain(path string, fallback bool) []byte {
	switch {
	case path == "/health":
		return plainResponse(200, "application/json", `{"status":"ok"}`, corsHeader)
	case path == "/metrics":
		return plainResponse(200, "text/plain; version=0.0.4", d.metricsText(), "")
	case roomPath(path):
		return d.rooms.roomAnswer(path[len("/room/"):])
	case fallback && d.prof.slots:
		var clients int
		d.hub.Range(func(r *routing.Room) bool { clients += connected(r.Members()); return true })
		return plainResponse(200, "text/plain; charset=utf-8",
			fmt.Sprintf("rooms: %d\nclients: %d\n", d.hub.Rooms(), clients), "")
	}
	return nil
}

// roomPath reports whether path is /room/<one non-empty segment>.
func roomPath(path string) bool {
	return strings.HasPrefix(path, "/room/") && len(path) > len("/room/") && !strings.Contains(path[len("/room/"):], "/")
}

// roomCodeOf decodes GET /room's segment into a room code of the dialect.
func (d *Dialect) roomCodeOf(seg string) (string, bool) {
	code, err := url.PathUnescape(seg)
	if !d.prof.slots {
		code = strings.ToUpper(code) // party codes are case-insensitive
	}
	return code, err == nil
}

// roomAnswer is GET /room/<seg> of a room on this node:
// {"clients","maxClients","origin","url"?}.
func (d local) roomAnswer(seg string) []byte {
	hdr := d.roomHeader()
	code, ok := d.roomCodeOf(seg)
	var r *routing.Room
	if ok {
		r = d.hub.Get(code)
	}
	st, _ := roomStateOf(r)
	if st == nil {
		return plainResponse(404, "application/json", `{"error":"Room not found"}`, hdr)
	}
	members := r.Members()
	if st.slot != nil {
		return roomBody(hdr, connected(members), st.slot.maxText, st.origin, st.slot.url, st.slot.hasURL)
	}
	return roomBody(hdr, len(members), itoa(r.Max), st.origin, "", false)
}

func (d *Dialect) roomHeader() string {
	return corsHeader + "X-Instance-Id: " + headerValue(d.cfg.InstanceID) + "\r\n"
}

// roomBody is GET /room's 200 answer.
func roomBody(hdr string, clients int, maxText, origin, url string, hasURL bool) []byte {
	b := []byte(`{"clients":`)
	b = strconv.AppendInt(b, int64(clients), 10)
	b = append(b, `,"maxClients":`...)
	b = append(b, maxText...)
	b = append(b, `,"origin":`...)
	b = codec.AppendString(b, origin)
	if hasURL {
		b = append(b, `,"url":`...)
		b = codec.AppendString(b, url)
	}
	b = append(b, '}')
	return plainResponse(200, "application/json", string(b), hdr)
}

// PlainWork implements dialect.PlainHTTPDeferred: GET /room/<code> is
// answered off the loop when the store says so (in a cluster it reads the
// room's registry record, which blocks). Any goroutine.
func (d *Dialect) PlainWork(path string) func() []byte {
	if !roomPath(path) {
		return nil
	}
	return d.rooms.roomWork(path[len("/room/"):])
}

// roomWork: this node answers GET /room on the loop (roomAnswer).
func (local) roomWork(string) func() []byte { return nil }

func roomStateOf(r *routing.Room) (*roomState, bool) {
	if r == nil {
		return nil, false
	}
	st, ok := r.Ext().(*roomState)
	return st, ok && st != nil
}

const corsHeader = "Access-Control-Allow-Origin: *\r\n"

// plainResponse is a complete HTTP/1.1 response that closes the
// connection, with the extra header lines hdr (each ending in CRLF).
func plainResponse(status int, ctype, body, hdr string) []byte {
	return fmt.Appendf(nil, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%sContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		status, statusText(status), ctype, hdr, len(body), body)
}

// headerValue drops the characters a header value cannot hold.
func headerValue(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

func statusText(s int) string {
	switch s {
	case 200:
		return "OK"
	case 404:
		return "Not Found"
	case 501:
		return "Not Implemented"
	}
	return strconv.Itoa(s)
}

// originTable counts connections and rooms created per Origin, for the
// party_sockets_*_total series: at most maxOrigins entries, the least
// recently updated evicted.
type originTable struct {
	mu   sync.Mutex
	tick uint64
	m    map[string]*originCount
}

type originCount struct {
	conns, rooms uint64
	at           uint64 // tick of the last update
}

func newOriginTable() *originTable { return &originTable{m: map[string]*originCount{}} }

func (t *originTable) entry(origin string) *originCount {
	t.tick++
	c := t.m[origin]
	if c == nil {
		if len(t.m) >= maxOrigins {
			var oldest string
			var at uint64 = 1<<64 - 1
			for o, x := range t.m {
				if x.at < at {
					oldest, at = o, x.at
				}
			}
			delete(t.m, oldest)
		}
		c = &originCount{}
		t.m[strings.Clone(origin)] = c
	}
	c.at = t.tick
	return c
}

func (t *originTable) connected(origin string) {
	t.mu.Lock()
	t.entry(origin).conns++
	t.mu.Unlock()
}

func (t *originTable) roomCreated(origin string) {
	t.mu.Lock()
	t.entry(origin).rooms++
	t.mu.Unlock()
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
var heapMu sync.Mutex

// metricsText is /metrics in Prometheus text format.
func (d *Dialect) metricsText() string {
	inst, region := d.cfg.InstanceID, strings.ToUpper(d.cfg.Region)
	if inst == "" {
		inst = "local"
	}
	if region == "" {
		region = "LOCAL"
	}
	base := fmt.Sprintf(`instance=%s,region=%s,version=%s`, strconv.Quote(inst), strconv.Quote(region), strconv.Quote(Version))

	type live struct{ clients, rooms uint64 }
	byOrigin := map[string]*live{}
	var clients, rooms uint64
	d.hub.Range(func(r *routing.Room) bool {
		st, ok := roomStateOf(r)
		if !ok {
			return true
		}
		n := uint64(len(r.Members()))
		if st.slot != nil {
			n = uint64(connected(r.Members()))
		}
		clients += n
		rooms++
		l := byOrigin[st.origin]
		if l == nil {
			l = &live{}
			byOrigin[st.origin] = l
		}
		l.clients += n
		l.rooms++
		return true
	})
	d.origins.mu.Lock()
	counts := make(map[string]originCount, len(d.origins.m))
	for o, c := range d.origins.m {
		counts[o] = *c
	}
	tracked := len(d.origins.m)
	d.origins.mu.Unlock()

	// The top origins by live clients x 1000 + connections get their own series.
	all := map[string]struct{}{}
	for o := range byOrigin {
		all[o] = struct{}{}
	}
	for o := range counts {
		all[o] = struct{}{}
	}
	names := make([]string, 0, len(all))
	for o := range all {
		names = append(names, o)
	}
	score := func(o string) uint64 {
		var s uint64
		if l := byOrigin[o]; l != nil {
			s = l.clients * 1000
		}
		return s + counts[o].conns
	}
	sort.Slice(names, func(i, j int) bool {
		if si, sj := score(names[i]), score(names[j]); si != sj {
			return si > sj
		}
		return names[i] < names[j]
	})
	label := func(o string) string { return o }
	if len(names) > originSeries {
		top := map[string]bool{}
		for _, o := range names[:originSeries] {
			top[o] = true
		}
		label = func(o string) string {
			if top[o] {
				return o
			}
			return "__other__"
		}
	}
	type series struct {
		name, help, typ string
		val             func(o string) uint64
		some            func(o string) bool
	}
	var b strings.Builder
	gauge := func(name, help string, v uint64) {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s{%s} %d\n", name, help, name, name, base, v)
	}
	gauge("party_sockets_clients", "Connected clients across all rooms", clients)
	gauge("party_sockets_rooms", "Live rooms", rooms)
	gauge("party_sockets_origins_tracked", "Origins in the per-origin counter table", uint64(tracked))
	for _, s := range []series{
		{"party_sockets_clients_by_origin", "Connected clients by the room creator's origin", "gauge",
			func(o string) uint64 { return byOrigin[o].clients }, func(o string) bool { return byOrigin[o] != nil }},
		{"party_sockets_rooms_by_origin", "Live rooms by the creator's origin", "gauge",
			func(o string) uint64 { return byOrigin[o].rooms }, func(o string) bool { return byOrigin[o] != nil }},
		{"party_sockets_connections_total", "WebSocket connections opened, by their origin", "counter",
			func(o string) uint64 { return counts[o].conns }, func(o string) bool { return counts[o].conns > 0 }},
		{"party_sockets_rooms_created_total", "Rooms created, by their creator's origin", "counter",
			func(o string) uint64 { return counts[o].rooms }, func(o string) bool { return counts[o].rooms > 0 }},
	} {
		fmt.Fprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", s.name, s.help, s.name, s.typ)
		sums := map[string]uint64{}
		var order []string
		for _, o := range names {
			if !s.some(o) {
				continue
			}
			l := label(o)
			if _, seen := sums[l]; !seen {
				order = append(order, l)
			}
			sums[l] += s.val(o)
		}
		for _, l := range order {
			fmt.Fprintf(&b, "%s{%s,origin=%s} %d\n", s.name, base, strconv.Quote(l), sums[l])
		}
	}
	gauge("process_resident_memory_bytes", "Resident set size", residentBytes())
	heapMu.Lock()
	metrics.Read(heapSample)
	heap := heapSample[0].Value.Uint64()
	heapMu.Unlock()
	gauge("process_heap_used_bytes", "Go heap in use by objects", heap)
	fmt.Fprintf(&b, "# HELP process_uptime_seconds Seconds since the dialect started\n# TYPE process_uptime_seconds counter\nprocess_uptime_seconds{%s} %.2f\n",
		base, time.Since(d.started).Seconds())
	return b.String()
}

// residentBytes reads the process's resident set size (0 if unknown).
func residentBytes() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}
