// Command partyline is a real-time WebSocket server that speaks several
// wire dialects over one event-loop engine. main parses flags and the
// environment into a server.Config, then runs the server until SIGINT or
// SIGTERM; everything else lives in packages.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"partyline/assemble"
	"strings"
	"syscall"
	"time"

	"partyline/server"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "token" { // partyline token --user alice: main_token.go
		os.Exit(tokenMain(os.Args[2:], os.Getenv, os.Stdout, os.Stderr))
	}
	cfg, err := parseConfig(os.Args[1:], os.LookupEnv)
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(0)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "partyline:", err)
		os.Exit(2)
	}
	srv, err := assemble.New(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "partyline:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := srv.Run(ctx); err != nil {
		cfg.Logger.Error("partyline stopped", "err", err)
		os.Exit(1)
	}
}

// listFlag is a repeatable flag; from the environment it takes a
// comma-separated list.
type listFlag struct {
	vals []string
	set  bool
}

func (l *listFlag) String() string { return strings.Join(l.vals, ",") }
func (l *listFlag) Set(v string) error {
	if !l.set {
		l.vals, l.set = nil, true
	}
	l.vals = append(l.vals, v)
	return nil
}

// parseConfig reads flags, then PARTYLINE_<FLAG> variables for every flag
// not given on the command line.
func parseConfig(args []string, lookupEnv func(string) (string, bool)) (server.Config, error) {
	cfg := server.Defaults()
	fs := flag.NewFlagSet("partyline", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: partyline [flags]\n       partyline token --user NAME [--ttl 1h]   print an HS256 token for /chat and /presence (partyline token --help)\n\nEvery flag can also be set as PARTYLINE_<FLAG> (upper case, - as _).\n\n")
		fs.PrintDefaults()
	}
	listen := &listFlag{vals: []string{":8080"}}
	fs.Var(listen, "listen", "WebSocket listener `ADDR[=DIALECT]`, repeatable; with =DIALECT every path on it is that dialect")
	fs.StringVar(&cfg.HTTPAddr, "http", cfg.HTTPAddr, "HTTP listener for /healthz, /metrics and /api; empty disables")
	fs.StringVar(&cfg.APIKey, "api-key", "", "bearer key for the HTTP API (none: loopback clients only, and no cross-site Origin or non-loopback Host)")
	fs.StringVar(&cfg.MetricsKey, "metrics-key", "", "bearer key for /metrics (none: open)")
	fs.IntVar(&cfg.MaxHTTPConns, "http-max-connections", cfg.MaxHTTPConns, "HTTP connections at once; past it the longest-idle one is closed (503 if none is idle)")
	fs.StringVar(&cfg.NodeID, "node-id", "", "this node's name (default hostname:port); unique in a cluster")
	fs.StringVar(&cfg.NATSURL, "nats", "", "cluster mode through NATS at `URL` (nats-server 2.10 or later with JetStream), e.g. nats://127.0.0.1:4222; none: single node")
	fs.DurationVar(&cfg.NodeLease, "node-lease", 15*time.Second, "cluster: a node silent this long is dead and its connections' memberships are removed")
	fs.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "directory of the embedded durable store (chat history, groups)")
	fs.IntVar(&cfg.MaxMessageSize, "max-message-size", cfg.MaxMessageSize, "largest message in bytes (close 1009 beyond)")
	fs.IntVar(&cfg.MaxHandshake, "max-handshake-size", cfg.MaxHandshake, "largest handshake request in bytes (431 beyond)")
	fs.DurationVar(&cfg.HandshakeWait, "handshake-timeout", cfg.HandshakeWait, "a WebSocket handshake must complete within")
	fs.IntVar(&cfg.MaxPending, "max-pending-handshakes", cfg.MaxPending, "sockets in the handshake at once; a new one beyond drops the oldest")
	fs.DurationVar(&cfg.MessageTimeout, "message-timeout", cfg.MessageTimeout, "a message must complete within this from its first byte (close 1008 otherwise)")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", cfg.PingInterval, "protocol keepalive ping period; a peer silent for a whole period after a ping is closed (0 disables)")
	fs.IntVar(&cfg.OutboundCap, "outbound-cap", cfg.OutboundCap, "per-connection outbound bytes before a slow-consumer close (1008)")
	fs.Int64Var(&cfg.MaxOutboundTotal, "max-outbound-total", 0, "outbound bytes of all connections together; beyond, the largest backlogs are closed (1008) (0: a quarter of the machine's or the container's memory)")
	fs.DurationVar(&cfg.Drain, "drain", cfg.Drain, "graceful-shutdown window over which connections are closed")
	origins := fs.String("allowed-origins", "", "comma-separated Origin allow-list for WebSocket handshakes (403 otherwise); empty allows any")
	fs.StringVar(&cfg.DefaultDialect, "default-dialect", cfg.DefaultDialect, "dialect of / on a listener without one")
	fs.IntVar(&cfg.EventLoops, "event-loops", 0, "number of event loops (0: one per CPU)")
	fs.IntVar(&cfg.FanoutMin, "fanout-min", 0, "room size from which a broadcast is handed to each event loop for its members (0: 512)")
	fs.IntVar(&cfg.MaxConnections, "max-connections", 0, "WebSocket connections at once; more get HTTP 503 (0: the descriptor limit less 512)")
	fs.BoolVar(&cfg.Compression, "compression", false, "accept permessage-deflate (RFC 7692) from clients that offer it, without context takeover")
	fs.IntVar(&cfg.CompressionMinSize, "compression-min-size", cfg.CompressionMinSize, "with --compression: messages under this many bytes are sent uncompressed")
	dialectFlags(fs, &cfg.Dialects)
	limitFlags(fs, &cfg)
	webhookFlags(fs, &cfg.Webhook)
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	logFormat := fs.String("log-format", "text", "log format: text or json")

	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		env := "PARTYLINE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		v, set := lookupEnv(env)
		if given[f.Name] || !set || envErr != nil {
			return
		}
		parts := []string{v}
		if f.Name == "listen" || f.Name == "webhook-url" || f.Name == "webhook-secret" {
			parts = strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' })
		}
		for _, p := range parts {
			if err := fs.Set(f.Name, p); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", env, v, err)
				return
			}
		}
	})
	if envErr != nil {
		return cfg, envErr
	}

	cfg.Listeners = nil
	for _, l := range listen.vals {
		ln, err := server.ParseListener(l)
		if err != nil {
			return cfg, err
		}
		cfg.Listeners = append(cfg.Listeners, ln)
	}
	if *origins != "" {
		for _, o := range strings.Split(*origins, ",") {
			if o = strings.TrimSpace(o); o != "" {
				cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
			}
		}
	}
	if cfg.NodeID == "" {
		host, _ := os.Hostname()
		_, port, _ := net.SplitHostPort(cfg.Listeners[0].Addr) // not Cut: an IPv6 host has colons
		cfg.NodeID = host + ":" + port
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return cfg, fmt.Errorf("--log-level %q: %w", *logLevel, err)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch *logFormat {
	case "text":
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, opts))
	case "json":
		cfg.Logger = slog.New(slog.NewJSONHandler(os.Stderr, opts))
	default:
		return cfg, fmt.Errorf("--log-format %q: want text or json", *logFormat)
	}
	for _, d := range []time.Duration{cfg.HandshakeWait, cfg.Drain, cfg.MessageTimeout} {
		if d < 0 {
			return cfg, errors.New("durations must not be negative")
		}
	}
	return cfg, cfg.Validate()
}
