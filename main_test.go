package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"io"
	"net"
	"os"
	"os/exec"
	"partyline/assemble"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/internal/testutil"
	"partyline/server"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseConfigDefaults(t *testing.T) {
	cfg, err := parseConfig(nil, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	d := server.Defaults()
	if !reflect.DeepEqual(cfg.Listeners, []server.Listener{{Addr: ":8080"}}) || cfg.HTTPAddr != ":8081" {
		t.Fatalf("listeners %v http %q", cfg.Listeners, cfg.HTTPAddr)
	}
	if cfg.APIKey != "" || cfg.MaxMessageSize != 65536 || cfg.PingInterval != 30*time.Second || cfg.Drain != 10*time.Second {
		t.Fatalf("defaults changed: %+v", cfg)
	}
	if cfg.DefaultDialect != "party" || len(cfg.AllowedOrigins) != 0 {
		t.Fatalf("default dialect %q origins %v", cfg.DefaultDialect, cfg.AllowedOrigins)
	}
	if cfg.Party.CodeLength != 4 || cfg.Party.MaxClients != 1000 || cfg.Party.StrictReconnect || cfg.Party.MaxState != d.Party.MaxState {
		t.Fatalf("party defaults %+v", cfg.Party)
	}
	if cfg.MaxPending != 1024 || cfg.HandshakeWait != 5*time.Second || cfg.MessageTimeout != 30*time.Second ||
		cfg.MaxOutboundTotal <= 0 || cfg.Presence.MaxSubscriptions != 1000 || cfg.Rooms.MaxPerConnection != 64 {
		t.Fatalf("connection limit defaults: %+v", cfg)
	}
	if !strings.HasSuffix(cfg.NodeID, ":8080") || cfg.Logger == nil {
		t.Fatalf("node id %q logger %v", cfg.NodeID, cfg.Logger)
	}
}

func TestParseConfigFlags(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c server.Config)
	}{
		{"listen repeated, with a dialect", []string{"--listen", ":4000=party", "--listen", "127.0.0.1:5000"}, nil, func(t *testing.T, c server.Config) {
			want := []server.Listener{{Addr: ":4000", Dialect: "party"}, {Addr: "127.0.0.1:5000"}}
			if !reflect.DeepEqual(c.Listeners, want) {
				t.Fatalf("listeners %v, want %v", c.Listeners, want)
			}
			if !strings.HasSuffix(c.NodeID, ":4000") {
				t.Fatalf("node id %q, want hostname:4000", c.NodeID)
			}
		}},
		{"storage flags and quotas", []string{"--store-min-free", "1GiB", "--chat-max-messages-per-second", "2.5", "--chat-max-bytes-per-day", "10MB", "--store-close-timeout", "2s"}, nil, func(t *testing.T, c server.Config) {
			p := c.Presence
			if p.StoreMinFree != 1<<30 || p.ChatMaxMessagesPerSecond != 2.5 || p.ChatMaxBytesPerDay != 10e6 || p.StoreCloseTimeout != 2*time.Second {
				t.Fatalf("%+v", p)
			}
		}},
		{"storage defaults and env", nil, map[string]string{"PARTYLINE_CHAT_MAX_BYTES_PER_DAY": "64M", "PARTYLINE_CHAT_MAX_MESSAGES_PER_SECOND": "5"}, func(t *testing.T, c server.Config) {
			p := c.Presence
			if p.StoreMinFree != 64<<20 || p.ChatMaxBytesPerDay != 64<<20 || p.ChatMaxMessagesPerSecond != 5 || p.StoreCloseTimeout != 5*time.Second {
				t.Fatalf("%+v", p)
			}
		}},
		{"single-dash flags", []string{"-listen", ":4001", "-http", ":4002"}, nil, func(t *testing.T, c server.Config) {
			if c.Listeners[0].Addr != ":4001" || c.HTTPAddr != ":4002" {
				t.Fatalf("%v %q", c.Listeners, c.HTTPAddr)
			}
		}},
		{"http empty disables", []string{"--http", ""}, nil, func(t *testing.T, c server.Config) {
			if c.HTTPAddr != "" {
				t.Fatalf("http %q", c.HTTPAddr)
			}
		}},
		{"every engine flag", []string{"--api-key", "k", "--node-id", "n1", "--max-message-size", "1000",
			"--ping-interval", "5s", "--drain", "1s", "--allowed-origins", "https://a.example, https://b.example,,",
			"--default-dialect", "echo", "--event-loops", "3", "--outbound-cap", "4096", "--fanout-min", "64"}, nil, func(t *testing.T, c server.Config) {
			if c.APIKey != "k" || c.NodeID != "n1" || c.MaxMessageSize != 1000 || c.PingInterval != 5*time.Second ||
				c.Drain != time.Second || c.DefaultDialect != "echo" || c.EventLoops != 3 || c.OutboundCap != 4096 || c.FanoutMin != 64 {
				t.Fatalf("%+v", c)
			}
			if !reflect.DeepEqual(c.AllowedOrigins, []string{"https://a.example", "https://b.example"}) {
				t.Fatalf("origins %q", c.AllowedOrigins)
			}
		}},
		{"HTTP side flags", []string{"--metrics-key", "mk", "--http-max-connections", "1000"}, nil, func(t *testing.T, c server.Config) {
			if c.MetricsKey != "mk" || c.MaxHTTPConns != 1000 {
				t.Fatalf("metrics key %q, http max connections %d", c.MetricsKey, c.MaxHTTPConns)
			}
		}},
		{"HTTP side env", nil, map[string]string{"PARTYLINE_METRICS_KEY": "envmk", "PARTYLINE_HTTP_MAX_CONNECTIONS": "64"}, func(t *testing.T, c server.Config) {
			if c.MetricsKey != "envmk" || c.MaxHTTPConns != 64 || c.HTTPTimeouts.Idle != 15*time.Second {
				t.Fatalf("metrics key %q, http max connections %d, timeouts %+v", c.MetricsKey, c.MaxHTTPConns, c.HTTPTimeouts)
			}
		}},
		{"connection limit flags", []string{"--max-pending-handshakes", "16", "--handshake-timeout", "2s", "--message-timeout", "3s",
			"--max-outbound-total", "1048576", "--presence-max-subscriptions", "7", "--rooms-max-per-connection", "9"}, nil, func(t *testing.T, c server.Config) {
			if c.MaxPending != 16 || c.HandshakeWait != 2*time.Second || c.MessageTimeout != 3*time.Second ||
				c.MaxOutboundTotal != 1<<20 || c.Presence.MaxSubscriptions != 7 || c.Rooms.MaxPerConnection != 9 {
				t.Fatalf("%+v", c)
			}
		}},
		{"party flags", []string{"--room-code-length", "6", "--party-max-clients", "50", "--party-strict-reconnect", "--party-empty-room-ttl", "5m"}, nil, func(t *testing.T, c server.Config) {
			if c.Party.CodeLength != 6 || c.Party.MaxClients != 50 || !c.Party.StrictReconnect || c.Party.EmptyRoomTTL != 5*time.Minute {
				t.Fatalf("party %+v", c.Party)
			}
		}},
		{"join hook flags", []string{"--party-auth-url", "https://game.example/auth", "--party-auth-timeout", "500ms", "--party-auth-concurrency", "8"}, nil, func(t *testing.T, c server.Config) {
			if c.Party.AuthURL != "https://game.example/auth" || c.Party.AuthTimeout != 500*time.Millisecond || c.Party.AuthConcurrency != 8 {
				t.Fatalf("party %+v", c.Party)
			}
		}},
		{"join hook env and defaults", nil, map[string]string{"PARTYLINE_PARTY_AUTH_URL": "http://127.0.0.1:9000/join"}, func(t *testing.T, c server.Config) {
			if c.Party.AuthURL != "http://127.0.0.1:9000/join" || c.Party.AuthTimeout != 2*time.Second || c.Party.AuthConcurrency != 64 {
				t.Fatalf("party %+v", c.Party)
			}
		}},
		{"ping-interval 0 disables", []string{"--ping-interval", "0"}, nil, func(t *testing.T, c server.Config) {
			if c.PingInterval != 0 {
				t.Fatalf("ping %v", c.PingInterval)
			}
		}},
		{"IPv6 listener: node id keeps the port", []string{"--listen", "[::1]:9000"}, nil, func(t *testing.T, c server.Config) {
			if !strings.HasSuffix(c.NodeID, ":9000") || strings.Contains(c.NodeID, "]") {
				t.Fatalf("node id %q, want hostname:9000", c.NodeID)
			}
		}},
		{"env vars", nil, map[string]string{
			"PARTYLINE_LISTEN":                 "127.0.0.1:7000=party, 127.0.0.1:7001",
			"PARTYLINE_HTTP":                   "127.0.0.1:7002",
			"PARTYLINE_API_KEY":                "envkey",
			"PARTYLINE_ROOM_CODE_LENGTH":       "5",
			"PARTYLINE_PARTY_MAX_CLIENTS":      "8",
			"PARTYLINE_PARTY_STRICT_RECONNECT": "true",
			"PARTYLINE_PING_INTERVAL":          "7s",
			"PARTYLINE_MAX_MESSAGE_SIZE":       "2048",
			"PARTYLINE_ALLOWED_ORIGINS":        "https://x.example",
		}, func(t *testing.T, c server.Config) {
			want := []server.Listener{{Addr: "127.0.0.1:7000", Dialect: "party"}, {Addr: "127.0.0.1:7001"}}
			if !reflect.DeepEqual(c.Listeners, want) {
				t.Fatalf("listeners %v, want %v", c.Listeners, want)
			}
			if c.HTTPAddr != "127.0.0.1:7002" || c.APIKey != "envkey" || c.Party.CodeLength != 5 || c.Party.MaxClients != 8 ||
				!c.Party.StrictReconnect || c.PingInterval != 7*time.Second || c.MaxMessageSize != 2048 ||
				!reflect.DeepEqual(c.AllowedOrigins, []string{"https://x.example"}) {
				t.Fatalf("%+v", c)
			}
		}},
		{"flag beats env", []string{"--listen", ":6000", "--room-code-length", "7", "--api-key", "flagkey"}, map[string]string{
			"PARTYLINE_LISTEN":           ":1,:2",
			"PARTYLINE_ROOM_CODE_LENGTH": "5",
			"PARTYLINE_API_KEY":          "envkey",
			"PARTYLINE_HTTP":             ":6001", // not given as a flag: the env applies
		}, func(t *testing.T, c server.Config) {
			if !reflect.DeepEqual(c.Listeners, []server.Listener{{Addr: ":6000"}}) || c.Party.CodeLength != 7 || c.APIKey != "flagkey" {
				t.Fatalf("env overrode a flag: %v %d %q", c.Listeners, c.Party.CodeLength, c.APIKey)
			}
			if c.HTTPAddr != ":6001" {
				t.Fatalf("http %q, want the env value", c.HTTPAddr)
			}
		}},
		{"bool flag given false beats env true", []string{"--party-strict-reconnect=false"}, map[string]string{
			"PARTYLINE_PARTY_STRICT_RECONNECT": "true",
		}, func(t *testing.T, c server.Config) {
			if c.Party.StrictReconnect {
				t.Fatal("env overrode an explicit --party-strict-reconnect=false")
			}
		}},
		{"webhooks off by default", nil, nil, func(t *testing.T, c server.Config) {
			w := c.Webhook
			if w.Enabled() || w.Queue != 10_000 || w.Workers != 32 || w.Timeout != 5*time.Second || w.MaxAttempts != 12 || w.MaxAge != 10*time.Minute || w.Drain != 5*time.Second {
				t.Fatalf("%+v", w)
			}
		}},
		{"webhook flags, repeated", []string{"--webhook-url", "http://127.0.0.1:9000/hook", "--webhook-url", "https://hooks.example.com/p?x=1",
			"--webhook-secret", "old", "--webhook-secret", "new", "--webhook-queue", "50", "--webhook-workers", "4", "--webhook-timeout", "2s",
			"--webhook-max-attempts", "3", "--webhook-max-age", "1m", "--webhook-drain", "0s"}, nil, func(t *testing.T, c server.Config) {
			w := c.Webhook
			if !reflect.DeepEqual(w.URLs, []string{"http://127.0.0.1:9000/hook", "https://hooks.example.com/p?x=1"}) || !reflect.DeepEqual(w.Secrets, []string{"old", "new"}) {
				t.Fatalf("urls %q secrets %q", w.URLs, w.Secrets)
			}
			if w.Queue != 50 || w.Workers != 4 || w.Timeout != 2*time.Second || w.MaxAttempts != 3 || w.MaxAge != time.Minute || w.Drain != 0 {
				t.Fatalf("%+v", w)
			}
		}},
		{"webhooks from the env, comma-separated", nil, map[string]string{"PARTYLINE_WEBHOOK_URL": "http://a.test/h,http://b.test/h",
			"PARTYLINE_WEBHOOK_SECRET": "k", "PARTYLINE_WEBHOOK_QUEUE": "7"}, func(t *testing.T, c server.Config) {
			w := c.Webhook
			if !reflect.DeepEqual(w.URLs, []string{"http://a.test/h", "http://b.test/h"}) || !reflect.DeepEqual(w.Secrets, []string{"k"}) || w.Queue != 7 {
				t.Fatalf("%+v", w)
			}
		}},
		{"a webhook flag beats its env", []string{"--webhook-url", "http://flag.test/"}, map[string]string{"PARTYLINE_WEBHOOK_URL": "http://env.test/",
			"PARTYLINE_WEBHOOK_SECRET": "k"}, func(t *testing.T, c server.Config) {
			if !reflect.DeepEqual(c.Webhook.URLs, []string{"http://flag.test/"}) {
				t.Fatalf("%q", c.Webhook.URLs)
			}
		}},
		{"unrelated env ignored", nil, map[string]string{"LISTEN": ":1", "PARTYLINE_NOT_A_FLAG": "x"}, func(t *testing.T, c server.Config) {
			if c.Listeners[0].Addr != ":8080" {
				t.Fatalf("%v", c.Listeners)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := parseConfig(tc.args, envOf(tc.env))
			if err != nil {
				t.Fatalf("parseConfig: %v", err)
			}
			tc.check(t, cfg)
		})
	}
}

func TestParseConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want string // in the error text
	}{
		{"unknown flag", []string{"--nope"}, nil, "not defined"},
		{"bad int", []string{"--room-code-length", "four"}, nil, "room-code-length"},
		{"bad duration", []string{"--ping-interval", "soon"}, nil, "ping-interval"},
		{"code length out of range", []string{"--room-code-length", "2"}, nil, "room-code-length"},
		{"code length too long", []string{"--room-code-length", "17"}, nil, "room-code-length"},
		{"negative max clients", []string{"--party-max-clients", "-1"}, nil, "party-max-clients"},
		{"negative empty-room TTL", []string{"--party-empty-room-ttl", "-1s"}, nil, "party-empty-room-ttl"},
		{"join hook URL without scheme", []string{"--party-auth-url", "game.example/auth"}, nil, "party-auth-url"},
		{"join hook URL of another scheme", []string{"--party-auth-url", "ftp://game.example/auth"}, nil, "party-auth-url"},
		{"join hook URL unparseable", []string{"--party-auth-url", "http://[::1"}, nil, "party-auth-url"},
		{"join hook URL without host", []string{"--party-auth-url", "http:///auth"}, nil, "party-auth-url"},
		{"zero join hook timeout", []string{"--party-auth-url", "http://127.0.0.1/a", "--party-auth-timeout", "0"}, nil, "party-auth-timeout"},
		{"negative join hook timeout", []string{"--party-auth-url", "http://127.0.0.1/a", "--party-auth-timeout", "-1s"}, nil, "party-auth-timeout"},
		{"zero join hook concurrency", nil, map[string]string{"PARTYLINE_PARTY_AUTH_URL": "http://127.0.0.1/a", "PARTYLINE_PARTY_AUTH_CONCURRENCY": "0"}, "party-auth-concurrency"},
		{"zero max message size", []string{"--max-message-size", "0"}, nil, "max-message-size"},
		{"negative ping interval", []string{"--ping-interval", "-1s"}, nil, "ping-interval"},
		{"negative drain", []string{"--drain", "-1s"}, nil, "negative"},
		{"negative http max connections", []string{"--http-max-connections", "-1"}, nil, "max-connections"},
		{"empty listen address", []string{"--listen", "=party"}, nil, "empty address"},
		{"positional argument", []string{"extra"}, nil, "extra"},
		{"bad log level", []string{"--log-level", "loud"}, nil, "log-level"},
		{"bad size", []string{"--store-min-free", "lots"}, nil, "store-min-free"},
		{"negative size", []string{"--chat-max-bytes-per-day", "-1"}, nil, "chat-max-bytes-per-day"},
		{"negative rate", []string{"--chat-max-messages-per-second", "-1"}, nil, "chat-max-messages-per-second"},
		{"bad env size", nil, map[string]string{"PARTYLINE_STORE_MIN_FREE": "64 parsecs"}, "PARTYLINE_STORE_MIN_FREE"},
		{"bad log format", []string{"--log-format", "xml"}, nil, "log-format"},
		{"bad env int", nil, map[string]string{"PARTYLINE_ROOM_CODE_LENGTH": "x"}, "PARTYLINE_ROOM_CODE_LENGTH"},
		{"bad env duration", nil, map[string]string{"PARTYLINE_DRAIN": "forever"}, "PARTYLINE_DRAIN"},
		{"bad env bool", nil, map[string]string{"PARTYLINE_PARTY_STRICT_RECONNECT": "maybe"}, "PARTYLINE_PARTY_STRICT_RECONNECT"},
		{"env value out of range", nil, map[string]string{"PARTYLINE_ROOM_CODE_LENGTH": "1"}, "room-code-length"},
		{"negative max pending handshakes", []string{"--max-pending-handshakes", "-1"}, nil, "max-pending-handshakes"},
		{"negative message timeout", []string{"--message-timeout", "-1s"}, nil, "negative"},
		{"negative max outbound total", []string{"--max-outbound-total", "-1"}, nil, "max-outbound-total"},
		{"negative presence subscriptions", []string{"--presence-max-subscriptions", "-1"}, nil, "presence-max-subscriptions"},
		{"negative rooms per connection", []string{"--rooms-max-per-connection", "-1"}, nil, "rooms-max-per-connection"},
		{"webhook url without secret", []string{"--webhook-url", "http://127.0.0.1/h"}, nil, "needs --webhook-secret"},
		{"env webhook url without secret", nil, map[string]string{"PARTYLINE_WEBHOOK_URL": "http://127.0.0.1/h"}, "needs --webhook-secret"},
		{"webhook url not http", []string{"--webhook-url", "ws://127.0.0.1/h", "--webhook-secret", "k"}, nil, "http:// or https://"},
		{"webhook url without scheme", []string{"--webhook-url", "127.0.0.1:9000/h", "--webhook-secret", "k"}, nil, "--webhook-url"},
		{"webhook url without host", []string{"--webhook-url", "https:///h", "--webhook-secret", "k"}, nil, "no host"},
		{"empty webhook secret", []string{"--webhook-url", "http://h.test/", "--webhook-secret", ""}, nil, "empty secret"},
		{"negative webhook queue", []string{"--webhook-queue", "-1"}, nil, "webhook-queue"},
		{"negative webhook workers", []string{"--webhook-workers", "-1"}, nil, "webhook-workers"},
		{"negative webhook timeout", []string{"--webhook-timeout", "-1s"}, nil, "webhook-timeout"},
		{"negative webhook drain", []string{"--webhook-drain", "-1s"}, nil, "webhook-drain"},
		{"bad webhook attempts", []string{"--webhook-max-attempts", "many"}, nil, "webhook-max-attempts"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseConfig(tc.args, envOf(tc.env))
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not mention %q", err, tc.want)
			}
		})
	}
}

func TestParseConfigHelp(t *testing.T) {
	for _, arg := range []string{"--help", "-h"} {
		if _, err := parseConfig([]string{arg}, envOf(nil)); !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%s: %v, want flag.ErrHelp", arg, err)
		}
	}
}

// TestListenBinding runs a server from parsed flags: on a listener bound to
// party every path is party; on a plain listener an unknown path is 404.
func TestListenBinding(t *testing.T) {
	cfg, err := parseConfig([]string{"--listen", "127.0.0.1:0=party", "--listen", "127.0.0.1:0"}, envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := testutil.Start(t, func(c *server.Config) { c.Listeners = cfg.Listeners })
	for _, path := range []string{"/", "/anything", "/echo", "/deep/path?x=1"} {
		c := testutil.Dial(t, testutil.URL(s, 0, path))
		c.Send(`{"type":"create","clientId":"x"}`)
		c.Expect("created")
	}
	if _, err := testutil.TryDial(t, testutil.URL(s, 1, "/anything"), nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("unknown path on the plain listener: %v, want HTTP 404", err)
	}
	c := testutil.Dial(t, testutil.URL(s, 1, "/"))
	c.Send(`{"type":"create","clientId":"x"}`)
	c.Expect("created")
}

func TestUnknownDialectInListen(t *testing.T) {
	cfg, err := parseConfig([]string{"--listen", ":0=nosuch", "--http", ""}, envOf(nil))
	if err != nil {
		t.Fatalf("parseConfig: %v", err)
	}
	_, err = assemble.New(cfg)
	if err == nil || !strings.Contains(err.Error(), "unknown dialect") || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("server.New: %v, want an unknown dialect error naming it", err)
	}
	cfg, _ = parseConfig([]string{"--default-dialect", "nosuch"}, envOf(nil))
	if _, err := assemble.New(cfg); err == nil || !strings.Contains(err.Error(), "nosuch") {
		t.Fatalf("server.New with an unknown default dialect: %v", err)
	}
}

// --- the binary ---

// proc is a running partyline binary.
type proc struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	stderr strings.Builder
	lines  chan string
	done   chan struct{}
	err    error
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stderr.String()
}

// cleanEnv is the test's environment without PARTYLINE_ variables.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PARTYLINE_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func run(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), lines: make(chan string, 100), done: make(chan struct{})}
	p.cmd.Env = env
	p.cmd.Dir = t.TempDir() // the default data dir lands here
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.mu.Lock()
			p.stderr.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait returns the exit code, failing after 15 s.
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatalf("process did not exit; stderr:\n%s", p.output())
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		return ee.ExitCode()
	}
	if p.err != nil {
		t.Fatalf("wait: %v", p.err)
	}
	return 0
}

var readyRE = regexp.MustCompile(`msg="partyline ready" listen="?([^"]*?)"? http=`)

// ready waits for the ready line and returns the bound listeners as
// "DIALECT@ADDR" entries.
func (p *proc) ready(t *testing.T) []string {
	t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if m := readyRE.FindStringSubmatch(l); m != nil {
				return strings.Fields(m[1])
			}
		case <-p.done:
			t.Fatalf("exited before ready (%v); stderr:\n%s", p.err, p.output())
		case <-deadline:
			t.Fatalf("no ready line; stderr:\n%s", p.output())
		}
	}
}

func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "partyline")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("ready, serve, SIGTERM exits 0", func(t *testing.T) {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
			p := run(t, bin, cleanEnv(), "--listen", "127.0.0.1:0", "--http", "", "--drain", "300ms")
			bound := p.ready(t)
			if len(bound) != 1 || !strings.HasPrefix(bound[0], "127.0.0.1:") || strings.HasSuffix(bound[0], ":0") {
				t.Fatalf("ready line listeners %q: want the bound port", bound)
			}
			addr := strings.TrimPrefix(bound[0], "@")
			c := testutil.Dial(t, "ws://"+addr+"/party")
			c.Send(`{"type":"create","clientId":"x"}`)
			c.Expect("created")
			if err := p.cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			c.ExpectClose(websocket.CloseGoingAway)
			if code := p.wait(t); code != 0 {
				t.Fatalf("%v: exit code %d, want 0; stderr:\n%s", sig, code, p.output())
			}
			if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				t.Fatal("still accepting after exit")
			}
		}
	})

	t.Run("env configures the binary", func(t *testing.T) {
		p := run(t, bin, cleanEnv("PARTYLINE_LISTEN=127.0.0.1:0=party,127.0.0.1:0", "PARTYLINE_HTTP=127.0.0.1:0", "PARTYLINE_DRAIN=100ms"))
		bound := p.ready(t)
		if len(bound) != 2 || !strings.HasPrefix(bound[0], "party@127.0.0.1:") || !strings.HasPrefix(bound[1], "127.0.0.1:") {
			t.Fatalf("listeners %q, want a party-bound one and a plain one", bound)
		}
		c := testutil.Dial(t, "ws://"+strings.TrimPrefix(bound[0], "party@")+"/any/path")
		c.Send(`{"type":"create","clientId":"x"}`)
		c.Expect("created")
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		c.ExpectClose(websocket.CloseGoingAway)
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit code %d; stderr:\n%s", code, p.output())
		}
	})

	t.Run("port in use", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		busy := ln.Addr().String()
		for name, args := range map[string][]string{
			"websocket": {"--listen", busy, "--http", ""},
			"http":      {"--listen", "127.0.0.1:0", "--http", busy},
		} {
			p := run(t, bin, cleanEnv(), args...)
			code := p.wait(t)
			out := p.output()
			if code == 0 {
				t.Fatalf("%s port in use: exit code 0; stderr:\n%s", name, out)
			}
			if !strings.Contains(out, "address already in use") || !strings.Contains(out, busy) {
				t.Fatalf("%s port in use: unclear message:\n%s", name, out)
			}
			if strings.Contains(out, "partyline ready") {
				t.Fatalf("%s port in use: logged ready:\n%s", name, out)
			}
		}
	})

	t.Run("port held by another partyline", func(t *testing.T) {
		first := run(t, bin, cleanEnv(), "--listen", "127.0.0.1:0", "--http", "", "--drain", "100ms")
		addr := strings.TrimPrefix(first.ready(t)[0], "@")
		second := run(t, bin, cleanEnv(), "--listen", addr, "--http", "")
		if code := second.wait(t); code == 0 || !strings.Contains(second.output(), "address already in use") {
			t.Fatalf("second instance on %s: exit %d; stderr:\n%s", addr, code, second.output())
		}
		_ = first.cmd.Process.Signal(syscall.SIGTERM)
		if code := first.wait(t); code != 0 {
			t.Fatalf("first instance exit %d", code)
		}
	})

	t.Run("bad flags exit 2", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			env  []string
			want string
		}{
			{[]string{"--nope"}, nil, "flag provided but not defined: -nope"},
			{[]string{"--room-code-length", "x"}, nil, "room-code-length"},
			{[]string{"--room-code-length", "99"}, nil, "room-code-length"},
			{[]string{"--listen", "127.0.0.1:0=nosuch"}, nil, "unknown dialect"},
			{nil, []string{"PARTYLINE_PING_INTERVAL=soon"}, "PARTYLINE_PING_INTERVAL"},
		} {
			p := run(t, bin, cleanEnv(tc.env...), tc.args...)
			code := p.wait(t)
			if code != 2 || !strings.Contains(p.output(), tc.want) {
				t.Fatalf("%q %q: exit %d, want 2 with %q; stderr:\n%s", tc.args, tc.env, code, tc.want, p.output())
			}
		}
	})

	t.Run("--help exits 0", func(t *testing.T) {
		p := run(t, bin, cleanEnv(), "--help")
		if code := p.wait(t); code != 0 {
			t.Fatalf("exit %d", code)
		}
		out := p.output()
		for _, want := range []string{"Usage: partyline", "partyline token --user NAME", "-listen", "-room-code-length", "PARTYLINE_"} {
			if !strings.Contains(out, want) {
				t.Fatalf("help does not mention %q:\n%s", want, out)
			}
		}
	})
}

// TestEnvEmptyDisablesHTTP: a variable set to "" is a value (it disables
// the HTTP listener), unlike an unset one.
func TestEnvEmptyDisablesHTTP(t *testing.T) {
	cfg, err := parseConfig(nil, envOf(map[string]string{"PARTYLINE_HTTP": ""}))
	if err != nil || cfg.HTTPAddr != "" {
		t.Fatalf("PARTYLINE_HTTP=\"\": http %q err %v", cfg.HTTPAddr, err)
	}
	cfg, err = parseConfig(nil, envOf(nil))
	if err != nil || cfg.HTTPAddr != ":8081" {
		t.Fatalf("unset: http %q err %v", cfg.HTTPAddr, err)
	}
}
