package server

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"partyline/backplane"
	"strconv"
	"strings"
	"syscall"
	"time"

	"partyline/dialect"
	"partyline/webhook"
)

// Listener is one WebSocket listen address, optionally bound to a dialect
// (every path on it is then that dialect).
type Listener struct {
	Addr    string
	Dialect string // "" for path routing
}

// ParseListener parses "ADDR" or "ADDR=DIALECT".
func ParseListener(s string) (Listener, error) {
	addr, d, _ := strings.Cut(s, "=")
	if addr == "" {
		return Listener{}, fmt.Errorf("listener %q: empty address", s)
	}
	return Listener{Addr: addr, Dialect: d}, nil
}

func (l Listener) String() string {
	if l.Dialect == "" {
		return l.Addr
	}
	return l.Addr + "=" + l.Dialect
}

// Config is the whole server configuration. The zero value of each field
// means its documented default (see Defaults); main fills it from flags and
// the environment and validates it once.
type Config struct {
	Listeners      []Listener    // default: one on :8080 with path routing
	HTTPAddr       string        // HTTP listener; "" disables (Defaults sets :8081)
	APIKey         string        // bearer key for /api; "" = loopback only, same-site requests only
	MetricsKey     string        // bearer key for /metrics; "" = open
	DataDir        string        // embedded durable store
	NodeID         string        // this node's name (in a cluster: unique, the same across restarts)
	NATSURL        string        // cluster mode through NATS at this URL; "" = single node
	NodeLease      time.Duration // cluster: a node silent this long is dead and its members removed (0: 15s)
	MaxMessageSize int           // bytes; larger messages close with 1009
	MaxHandshake   int           // bytes of handshake request; larger are refused (431)
	HandshakeWait  time.Duration // a handshake must complete within (0: 5s)
	MaxPending     int           // sockets in the handshake at once; over it the oldest is dropped (0: 1024)
	MessageTimeout time.Duration // a message must complete within this from its first byte, or close 1008 (0: 30s)
	PingInterval   time.Duration // keepalive ping period; 0 disables
	OutboundCap    int           // per-connection queued bytes before a slow-consumer close
	// MaxOutboundTotal bounds the outbound bytes of all connections
	// together (queued and buffered by gnet); over it the largest backlogs
	// are closed as slow consumers (0: a quarter of the machine's or the
	// cgroup's memory).
	MaxOutboundTotal int64
	CloseWait        time.Duration // how long to wait for the peer's close frame
	Drain            time.Duration // graceful-shutdown window
	AllowedOrigins   []string      // Origin allow-list; empty = any
	DefaultDialect   string        // dialect of "/" on a listener without one
	EventLoops       int           // gnet event loops; 0 = one per CPU
	FanoutMin        int           // room size from which broadcasts go through the members' loops; 0 = routing.DefaultFanoutMin
	MaxConnections   int           // WebSocket connections; 0 = the descriptor limit less a reserve
	MaxHTTPConns     int           // concurrent HTTP connections, the oldest idle one closed past it; 0 = 256
	HTTPTimeouts                   // HTTP server timeouts; zero fields take the defaults
	Logger           *slog.Logger
	Extra            []dialect.Dialect // registered beside the built-in dialects (embedding, tests)

	// Assemble builds the dialects and the backplane they share from the
	// configuration (it may fill in their settings): the program's wiring,
	// assemble.Build. Required.
	Assemble func(cfg *Config) ([]dialect.Dialect, backplane.Service)
	// Compression accepts permessage-deflate (RFC 7692) offers; frames
	// with a payload under CompressionMinSize bytes go uncompressed.
	Compression        bool
	CompressionMinSize int

	Dialects // per-dialect settings: dialects.go

	// Webhook posts room and member events to its URLs (--webhook-url;
	// none: off). The server fills Node and Logger.
	Webhook webhook.Config

	AbuseLimits // per-connection rates and per-address limits: abuse.go
}

// HTTPTimeouts bound how long an HTTP connection may hold the server.
type HTTPTimeouts struct {
	ReadHeader time.Duration // request line and headers must arrive within (slowloris); 5s
	Read       time.Duration // the whole request, body included; 30s
	Write      time.Duration // from the end of the headers to the end of the response; 30s
	Idle       time.Duration // a keep-alive connection may wait this long for its next request; 15s
}

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{
		Listeners:          []Listener{{Addr: ":8080"}},
		HTTPAddr:           ":8081",
		DataDir:            "./data",
		MaxMessageSize:     64 << 10,
		MaxHandshake:       8 << 10,
		HandshakeWait:      5 * time.Second,
		MaxPending:         1024,
		MessageTimeout:     30 * time.Second,
		PingInterval:       30 * time.Second,
		OutboundCap:        1 << 20,
		CloseWait:          2 * time.Second,
		Drain:              10 * time.Second,
		DefaultDialect:     "party",
		MaxHTTPConns:       256,
		HTTPTimeouts:       HTTPTimeouts{ReadHeader: 5 * time.Second, Read: 30 * time.Second, Write: 30 * time.Second, Idle: 15 * time.Second},
		Dialects:           dialectDefaults(),
		AbuseLimits:        abuseDefaults(),
		CompressionMinSize: 256,
		Webhook:            webhook.Defaults(),
	}
}

// Validate checks the configuration and fills zero values with defaults.
func (c *Config) Validate() error {
	d := Defaults()
	if len(c.Listeners) == 0 {
		c.Listeners = d.Listeners
	}
	if c.MaxMessageSize <= 0 {
		return errors.New("max-message-size must be positive")
	}
	if c.MaxHandshake <= 0 {
		c.MaxHandshake = d.MaxHandshake
	}
	if c.HandshakeWait <= 0 {
		c.HandshakeWait = d.HandshakeWait
	}
	if c.MaxPending < 0 {
		return errors.New("max-pending-handshakes must not be negative")
	}
	if c.MaxPending == 0 {
		c.MaxPending = d.MaxPending
	}
	if c.MessageTimeout < 0 {
		return errors.New("message-timeout must not be negative")
	}
	if c.MessageTimeout == 0 {
		c.MessageTimeout = d.MessageTimeout
	}
	if c.MaxOutboundTotal < 0 {
		return errors.New("max-outbound-total must not be negative")
	}
	if c.MaxOutboundTotal == 0 {
		c.MaxOutboundTotal = defaultOutboundTotal()
	}
	if c.PingInterval < 0 {
		return errors.New("ping-interval must not be negative")
	}
	if c.OutboundCap <= 0 {
		c.OutboundCap = d.OutboundCap
	}
	if c.CloseWait <= 0 {
		c.CloseWait = d.CloseWait
	}
	if c.Drain < 0 {
		return errors.New("drain must not be negative")
	}
	if c.DefaultDialect == "" {
		c.DefaultDialect = d.DefaultDialect
	}
	if c.EventLoops < 0 {
		return errors.New("event-loops must not be negative")
	}
	if c.FanoutMin < 0 {
		return errors.New("fanout-min must not be negative")
	}
	if c.MaxConnections < 0 || c.MaxHTTPConns < 0 {
		return errors.New("max-connections must not be negative")
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = defaultMaxConnections()
	}
	if c.MaxHTTPConns == 0 {
		c.MaxHTTPConns = d.MaxHTTPConns
	}
	for _, t := range []struct{ v, def *time.Duration }{
		{&c.HTTPTimeouts.ReadHeader, &d.HTTPTimeouts.ReadHeader}, {&c.HTTPTimeouts.Read, &d.HTTPTimeouts.Read},
		{&c.HTTPTimeouts.Write, &d.HTTPTimeouts.Write}, {&c.HTTPTimeouts.Idle, &d.HTTPTimeouts.Idle},
	} {
		if *t.v < 0 {
			return errors.New("HTTP timeouts must not be negative")
		}
		if *t.v == 0 {
			*t.v = *t.def
		}
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if err := c.AbuseLimits.validate(); err != nil {
		return err
	}
	if c.NodeLease < 0 {
		return errors.New("node-lease must not be negative")
	}
	if c.NATSURL != "" && c.NodeID == "" {
		return errors.New("--nats needs a node id (--node-id)")
	}
	if c.CompressionMinSize < 0 {
		return errors.New("compression-min-size must not be negative")
	}
	if err := c.Webhook.Validate(); err != nil {
		return err
	}
	return c.Dialects.validate()
}

// fdReserve is kept free for listeners, epoll, HTTP, the store and logs.
const fdReserve = 512

// defaultMaxConnections keeps the WebSocket connections under the process's
// descriptor limit: running out would make accept fail, and gnet stops the
// whole engine when accept fails.
func defaultMaxConnections() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 1 << 20
	}
	n := int(rl.Cur)
	if n > 4*fdReserve {
		return n - fdReserve
	}
	return max(n*3/4, 1)
}

// defaultOutboundTotal is a quarter of the memory the process may use:
// the machine's (sysinfo), or the cgroup's limit when lower (in a
// container); 1 GiB when neither can be read. Outbound backlogs may take
// that much before the largest are closed, leaving the rest to the
// connections' own state, the dialects and the store.
func defaultOutboundTotal() int64 {
	var total int64
	var si syscall.Sysinfo_t
	if err := syscall.Sysinfo(&si); err == nil {
		total = int64(uint64(si.Totalram) * uint64(si.Unit))
	}
	for _, f := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(f); err == nil {
			if n := parseMemLimit(string(b)); n > 0 && (total == 0 || n < total) {
				total = n
			}
		}
	}
	if total <= 0 {
		return 1 << 30
	}
	return total / 4
}

// parseMemLimit reads a cgroup memory limit: bytes, or 0 for none ("max",
// or anything unreadable).
func parseMemLimit(s string) int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n <= 0 {
		return 0
	}
	return n
}
