package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/panjf2000/gnet/v2"

	"partyline/backplane"
	"partyline/dialect"
	"partyline/httpapi"
	"partyline/internal/security"
	"partyline/routing"
	"partyline/web"
	"partyline/webhook"
)

// Server is one partyline process: the WebSocket engine and the HTTP side.
type Server struct {
	cfg      Config
	registry *registry
	dialects []dialect.Dialect
	metrics  *metrics
	start    time.Time
	nextID   atomic.Uint64
	open     atomic.Int64 // connections, handshaking included
	pending  atomic.Int64 // connections in the handshake (pending.go)
	upgraded atomic.Int64 // connections past the handshake, closing ones included
	outTotal atomic.Int64 // outbound bytes queued or buffered by gnet, all connections (budget.go)
	evicting atomic.Int64 // pending handshakes another loop was asked to drop (pending.go)

	loopsMu sync.Mutex // guards loops
	loops   map[gnet.EventLoop]*loop

	bindings map[string]*binding // by local port; written in resolveListeners (before the engine starts), then read-only
	addrs    []net.Addr
	eng      gnet.Engine
	ready    chan struct{}

	httpLn  net.Listener // capped: httpConns
	httpSrv *http.Server

	draining atomic.Bool
	drainEnd atomic.Int64
	fences   atomic.Int64  // times the cluster fenced this node (see loop.tick)
	fencedID atomic.Uint64 // the newest connection id when it last did: later ones stay

	acceptSem chan struct{} // bounds deferred handshake checks in flight

	plane backplane.Service // what the dialects share with other nodes (Config.Assemble)
	hooks *webhook.Sender   // --webhook-url only

	gate    *addrGate                    // per-address limits (abuse.go)
	inbound map[dialect.Dialect]*inbound // per-connection inbound limits by dialect (abuse.go)
}

// New builds a server from a validated configuration.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, start: time.Now(), loops: map[gnet.EventLoop]*loop{}, ready: make(chan struct{}),
		acceptSem: make(chan struct{}, 64*runtime.NumCPU())}
	node := cfg.NodeID
	if node == "" {
		node = "local"
	}
	if cfg.Webhook.Enabled() {
		w := &s.cfg.Webhook
		w.Node, w.Logger, w.Labels = node, cfg.Logger, map[string]string{"node": node}
		s.hooks = webhook.New(*w)
		s.cfg.Party.Events, s.cfg.Rooms.Events = s.hooks, s.hooks
	}
	if cfg.Assemble == nil {
		s.closeHooks(0)
		return nil, errors.New("server: Config.Assemble is nil (the program's wiring: assemble.Build)")
	}
	ds, bp := cfg.Assemble(&s.cfg)
	s.dialects, s.plane = append(ds, cfg.Extra...), bp
	reg, err := newRegistry(s.dialects, cfg.DefaultDialect)
	if err != nil {
		s.closeHooks(0)
		return nil, err
	}
	s.registry = reg
	s.gate, s.inbound = newAddrGate(&s.cfg.AbuseLimits), map[dialect.Dialect]*inbound{}
	for _, d := range s.dialects {
		s.inbound[d] = inboundFor(&s.cfg, d)
	}
	s.bindings = map[string]*binding{}
	for _, l := range cfg.Listeners {
		if l.Dialect != "" {
			if _, err := reg.lookup(l.Dialect); err != nil {
				s.closeHooks(0)
				return nil, fmt.Errorf("--listen %s: %w", l, err)
			}
		}
	}
	s.metrics = newMetrics(node, s.dialects)
	if s.hooks != nil {
		s.metrics.reg.MustRegister(s.hooks.Collectors()...)
	}
	s.metrics.engineGauges(node, s)
	security.SetLogger(cfg.Logger)
	if cfg.FanoutMin > 0 {
		routing.SetFanoutMin(cfg.FanoutMin) // process-wide: every dialect's hub
	}
	s.metrics.reg.MustRegister(s.plane.Collectors(node)...)
	s.plane.OnFenced(func() { s.fencedID.Store(s.nextID.Load()); s.fences.Add(1) })
	if err := s.plane.Start(); err != nil {
		s.closeHooks(0)
		return nil, err // the backplane's errors name it already
	}
	if err := startDialects(s.dialects); err != nil {
		s.closeHooks(0)
		s.stopNode()
		return nil, err
	}
	return s, nil
}

// stopDialects flushes and closes every dialect's durable state, delivers
// the webhook events still queued (for at most --webhook-drain), then
// leaves the cluster.
func (s *Server) stopDialects() {
	for _, d := range s.dialects {
		if f, ok := d.(interface{ Shutdown() error }); ok {
			if err := f.Shutdown(); err != nil {
				s.cfg.Logger.Error("dialect shutdown", "dialect", d.Name(), "err", err)
			}
		}
	}
	s.closeHooks(s.cfg.Webhook.Drain)
	s.stopNode()
}

// closeHooks stops the webhook sender after at most wait of delivery.
func (s *Server) closeHooks(wait time.Duration) {
	if s.hooks != nil {
		s.hooks.Close(wait)
	}
}

func (s *Server) stopNode() {
	if err := s.plane.Stop(); err != nil {
		s.cfg.Logger.Error("backplane stop", "err", err)
	}
}

// dialectNames lists the names of ds, for the web pages.
func dialectNames(ds []dialect.Dialect) []string {
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Name()
	}
	return names
}

// startDialects calls Start() on every dialect that has one (opening a
// store, loading keys); if one fails, those already started are shut down.
func startDialects(ds []dialect.Dialect) error {
	var started []interface{ Shutdown() error }
	for _, d := range ds {
		st, ok := d.(interface{ Start() error })
		if !ok {
			continue
		}
		if err := st.Start(); err != nil {
			for _, p := range started {
				_ = p.Shutdown()
			}
			return fmt.Errorf("dialect %s: %w", d.Name(), err)
		}
		if sd, ok := d.(interface{ Shutdown() error }); ok {
			started = append(started, sd)
		}
	}
	return nil
}

// Ready is closed once every listener accepts connections.
func (s *Server) Ready() <-chan struct{} { return s.ready }

// Addrs are the bound WebSocket listener addresses, in configuration order
// (valid after Ready).
func (s *Server) Addrs() []net.Addr { return s.addrs }

// HTTPAddr is the bound HTTP listener address, or nil.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// HTTPConns reports the HTTP listener's open connections and how many of
// them wait for a request (0, 0 without one). Any goroutine, after Ready.
func (s *Server) HTTPConns() (open, idle int) {
	if l, ok := s.httpLn.(*httpConns); ok {
		return l.counts()
	}
	return 0, 0
}

// webListeners tells the web pages where the WebSocket listeners are: nil
// until they are bound. Any goroutine.
func (s *Server) webListeners() []web.Listener {
	select {
	case <-s.ready:
	default:
		return nil
	}
	ls := make([]web.Listener, len(s.addrs))
	for i, a := range s.addrs {
		ls[i] = web.Listener{Addr: a, Dialect: s.cfg.Listeners[i].Dialect}
	}
	return ls
}

// Run serves until ctx is cancelled, then shuts down gracefully: it stops
// accepting, closes every connection with 1001 over the drain window,
// flushes durable state and returns nil.
func (s *Server) Run(ctx context.Context) error {
	log := s.cfg.Logger
	if s.cfg.HTTPAddr != "" {
		ln, err := net.Listen("tcp", s.cfg.HTTPAddr)
		if err != nil {
			s.stopDialects()
			return fmt.Errorf("http listener: %w", err)
		}
		conns := newHTTPConns(ln, s.cfg.MaxHTTPConns)
		s.httpLn = conns
		t := s.cfg.HTTPTimeouts
		s.httpSrv = &http.Server{Handler: httpapi.New(httpapi.Config{
			APIKey:     s.cfg.APIKey,
			Proxies:    s.cfg.TrustedProxies,
			MetricsKey: s.cfg.MetricsKey,
			Metrics:    s.metrics.reg,
			Dialects:   s.dialects,
			Web:        web.Handler(web.Options{Listeners: s.webListeners, Dialects: dialectNames(s.dialects), Teams: s.cfg.Teams.Teams, PartyMaxClients: s.cfg.Party.MaxClients}),
		}),
			ReadHeaderTimeout: t.ReadHeader,
			ReadTimeout:       t.Read,
			WriteTimeout:      t.Write,
			IdleTimeout:       t.Idle,
			MaxHeaderBytes:    32 << 10,
			ConnState:         conns.state,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		}
		go func() {
			if err := s.httpSrv.Serve(conns); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("http server", "err", err)
			}
		}()
	}

	addrs, err := s.resolveListeners()
	if err != nil {
		s.closeHTTP()
		s.stopDialects()
		return err
	}
	for i := range addrs {
		addrs[i] = "tcp://" + addrs[i]
	}
	loops := s.cfg.EventLoops
	if loops == 0 {
		loops = runtime.NumCPU()
	}
	if n := spareProc(loops); n > 0 {
		log.Debug("GOMAXPROCS raised above the event loops", "gomaxprocs", n)
	}
	errc := make(chan error, 1)
	go func() {
		errc <- gnet.Rotate(&handler{s: s}, addrs,
			gnet.WithMulticore(true),
			gnet.WithNumEventLoop(loops),
			gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithReuseAddr(true),
			// One listener per loop: each accept is followed at once by
			// OnOpen on the same loop, which refuses connections over
			// --max-connections before the process can run out of
			// descriptors (gnet stops the engine when accept fails).
			gnet.WithReusePort(true),
			gnet.WithLogger(gnetLogger{log}),
		)
	}()
	select {
	case err := <-errc:
		s.closeHTTP()
		s.stopDialects()
		if err == nil {
			err = errors.New("engine stopped before it was ready")
		}
		return fmt.Errorf("websocket listener: %w", err)
	case <-s.ready:
	}
	var bound []string
	for i, a := range s.addrs {
		if d := s.cfg.Listeners[i].Dialect; d != "" {
			bound = append(bound, d+"@"+a.String())
		} else {
			bound = append(bound, a.String())
		}
	}
	log.Info("partyline ready", "listen", strings.Join(bound, " "), "http", s.HTTPAddr(), "event_loops", loops)

	tickDone := make(chan struct{})
	go s.ticker(tickDone)
	defer close(tickDone)

	select {
	case err := <-errc:
		s.closeHTTP()
		s.stopDialects()
		return fmt.Errorf("engine stopped: %w", err)
	case <-ctx.Done():
	}
	return s.shutdown(errc)
}

// spareProc makes GOMAXPROCS at least loops+1 (unless the GOMAXPROCS
// environment variable fixes it) and returns the new value, or 0 if it
// was left alone. Each event loop blocks in epoll_wait holding a P; with
// no P to spare, a goroutine woken by Go's own netpoller (the NATS
// connection, the HTTP listener) or readied by a loop (store and auth
// workers) waits until sysmon takes a P back, which an idle sysmon does
// only every 10 ms: cluster deliveries and chat acks then took 10-20 ms
// at their p90 instead of 1-3 ms (bench/RESULTS.md, "chat in cluster
// mode"). Process-wide; only ever raised.
func spareProc(loops int) int {
	if os.Getenv("GOMAXPROCS") != "" || runtime.GOMAXPROCS(0) > loops {
		return 0
	}
	runtime.GOMAXPROCS(loops + 1)
	return loops + 1
}

func (s *Server) shutdown(errc chan error) error {
	log := s.cfg.Logger
	log.Info("shutting down", "connections", s.open.Load(), "drain", s.cfg.Drain)
	for _, d := range s.dialects { // before any connection closes for the drain
		if dr, ok := d.(interface{ Drain() }); ok {
			dr.Drain()
		}
	}
	s.drainEnd.Store(time.Now().Add(s.cfg.Drain).UnixNano())
	s.draining.Store(true)
	deadline := time.Now().Add(s.cfg.Drain + s.cfg.CloseWait + time.Second)
	for s.open.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(tickDur)
	}
	s.stopDialects()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.eng.Stop(ctx); err != nil {
		log.Warn("engine stop", "err", err)
	}
	<-errc
	s.closeHTTP()
	log.Info("stopped")
	return nil
}

func (s *Server) closeHTTP() {
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = s.httpSrv.Shutdown(ctx)
	}
}

// resolveListeners binds each WebSocket address once, without
// SO_REUSEPORT, to fail fast when the port is taken and to turn port 0 into
// a concrete port; gnet then binds that port once per event loop.
func (s *Server) resolveListeners() ([]string, error) {
	addrs := make([]string, len(s.cfg.Listeners))
	for i, l := range s.cfg.Listeners {
		ln, err := net.Listen("tcp", l.Addr)
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", l.Addr, err)
		}
		a := ln.Addr().(*net.TCPAddr)
		_ = ln.Close()
		host, _, _ := net.SplitHostPort(l.Addr)
		addrs[i] = net.JoinHostPort(host, strconv.Itoa(a.Port))
		s.addrs = append(s.addrs, a)
		b := &binding{addr: a.String()}
		if l.Dialect != "" {
			b.dialect, _ = s.registry.lookup(l.Dialect)
		}
		s.bindings[strconv.Itoa(a.Port)] = b
	}
	return addrs, nil
}

// booted runs in OnBoot.
func (s *Server) booted(eng gnet.Engine) {
	s.eng = eng
	close(s.ready)
}

func (s *Server) loopOf(el gnet.EventLoop) *loop {
	s.loopsMu.Lock()
	defer s.loopsMu.Unlock()
	l := s.loops[el]
	if l == nil {
		l = newLoop(s, el)
		s.loops[el] = l
	}
	return l
}

// ticker asks every loop to advance its timer wheel once per tick.
func (s *Server) ticker(done chan struct{}) {
	t := time.NewTicker(tickDur)
	defer t.Stop()
	var ls []*loop
	for {
		select {
		case <-done:
			return
		case <-t.C:
		}
		s.loopsMu.Lock()
		ls = ls[:0]
		for _, l := range s.loops {
			ls = append(ls, l)
		}
		s.loopsMu.Unlock()
		for _, l := range ls {
			_ = l.el.Execute(context.Background(), l.tickTask)
		}
	}
}

func (s *Server) now() int64 { return time.Now().UnixNano() }

func (s *Server) jitter(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return rand.Int64N(n)
}

func (s *Server) originAllowed(origin string) bool {
	if len(s.cfg.AllowedOrigins) == 0 {
		return true
	}
	if origin == "" { // not a browser: Origin protects browsers only
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// gnetLogger sends gnet's logs to slog (its info lines are boot chatter).
type gnetLogger struct{ l *slog.Logger }

func (g gnetLogger) Debugf(f string, a ...any) { g.l.Debug(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Infof(f string, a ...any)  { g.l.Debug(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Warnf(f string, a ...any)  { g.l.Warn(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Errorf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...)) }
func (g gnetLogger) Fatalf(f string, a ...any) { g.l.Error(fmt.Sprintf(f, a...)) }
