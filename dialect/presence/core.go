package presence

import (
	"errors"
	"log/slog"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"partyline/auth"
	"partyline/backplane"
	"partyline/dialect"
	"partyline/dialect/internal/workers"
	"partyline/internal/security"
	"partyline/store"
)

// Config holds the settings /chat and /presence share.
type Config struct {
	AuthTimeout time.Duration // first AUTH must arrive within (--auth-timeout)
	Grace       time.Duration // offline only after this long without a connection (--presence-grace); 0: at once
	Workers     int           // goroutines running store operations (0: 128)
	Queue       int           // store operations waiting for a worker before "Server busy" (0: 8192)
	// MaxSubscriptions bounds the names one /presence connection may
	// subscribe to (--presence-max-subscriptions; 0: 1000). Each costs a
	// map entry and a status frame per change, so it is kept low enough
	// that a server full of watchers stays within memory.
	MaxSubscriptions int

	StoreMinFree      int64         // writes refused below this many free bytes on the store's disk (--store-min-free); 0: no floor
	StoreCloseTimeout time.Duration // shutdown gives up waiting for the store after this (0: 5s)

	// Per-user chat quotas, off at 0.
	ChatMaxMessagesPerSecond float64 // messages a user may send per second, with a burst of as many (--chat-max-messages-per-second)
	ChatMaxBytesPerDay       int64   // message content bytes a user may store per UTC day, per node (--chat-max-bytes-per-day)
}

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{AuthTimeout: 10 * time.Second, Grace: 3 * time.Second, Workers: 128, Queue: 8192,
		MaxSubscriptions: DefaultMaxSubscriptions,
		StoreMinFree:     64 << 20, StoreCloseTimeout: store.DefaultCloseTimeout}
}

// Validate checks c and fills zero values with defaults.
func (c *Config) Validate() error {
	d := Defaults()
	if c.AuthTimeout == 0 {
		c.AuthTimeout = d.AuthTimeout
	}
	if c.AuthTimeout < 0 {
		return errors.New("auth-timeout must be positive")
	}
	if c.Grace < 0 {
		return errors.New("presence-grace must not be negative")
	}
	if c.Workers <= 0 {
		c.Workers = d.Workers
	}
	if c.Queue <= 0 {
		c.Queue = d.Queue
	}
	if c.MaxSubscriptions < 0 {
		return errors.New("presence-max-subscriptions must not be negative")
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = d.MaxSubscriptions
	}
	if c.StoreCloseTimeout <= 0 {
		c.StoreCloseTimeout = d.StoreCloseTimeout
	}
	switch {
	case c.StoreMinFree < 0:
		return errors.New("store-min-free must not be negative")
	case c.ChatMaxMessagesPerSecond < 0:
		return errors.New("chat-max-messages-per-second must not be negative")
	case c.ChatMaxBytesPerDay < 0:
		return errors.New("chat-max-bytes-per-day must not be negative")
	}
	return nil
}

// Core is what the chat and presence dialects share: token verification,
// the store, the store's worker pool and the presence registry. It is
// built once (assemble.Build) and started by the first dialect's
// Start, which loads the token keys (a bad key file fails the server's
// start) and starts the workers. The store is opened by the first request
// that needs it, on a worker: a server that never serves /chat or
// /presence never touches its data directory. Shutdown is idempotent.
//
// What chat and presence share with other nodes goes through a backplane
// (UseBackplane): the store (Node.OpenStore) and the presence census
// (each node's connection count per user). On a single node (the
// default, backplane.Local) the store is Pebble in the data directory
// and the census is this process's counts (nobody else's: the registry's
// remote counts stay 0, and its waits answer at once); in a cluster
// history and groups live in JetStream and a user is online while it has
// a connection on any node.
type Core struct {
	cfg     Config
	jwt     auth.Config
	dataDir string
	log     *slog.Logger

	startOnce sync.Once
	startErr  error
	stopOnce  sync.Once
	stopErr   error

	Registry *Registry // built by NewCore

	// What is shared with other nodes (UseBackplane): the store is opened
	// through bp; census counts the users' connections on every node.
	bp     backplane.Node
	census backplane.Census

	// Set by Start, read-only afterwards.
	Verifier *auth.Verifier
	authPool *auth.Pool
	work     *workers.Pool // store operations

	stMu     sync.Mutex  // guards the following; held while opening the store
	st       store.Store // nil until first opened
	stClosed bool
	stFailed bool      // an open failed (logged once)
	stErr    error     // the last failed open
	stRetry  time.Time // no new open attempt before

	opened  atomic.Pointer[store.Store] // st once open, for Health (never blocks)
	openErr atomic.Pointer[error]       // the last failed open, until one succeeds
}

// NewCore returns an unstarted core.
func NewCore(cfg Config, jwt auth.Config, dataDir string, log *slog.Logger) *Core {
	if log == nil {
		log = slog.Default()
	}
	c := &Core{cfg: cfg, jwt: jwt, dataDir: dataDir, log: log}
	c.Registry = NewRegistry(cfg.Grace, c.contacts, log)
	c.Registry.MaxSubscriptions = cfg.MaxSubscriptions
	c.UseBackplane(backplane.NewLocal("", log, 0))
	return c
}

func (c *Core) pebbleOptions() store.PebbleOptions {
	return store.PebbleOptions{Logger: c.log, CloseTimeout: c.cfg.StoreCloseTimeout,
		Space: store.SpaceOptions{MinFree: c.cfg.StoreMinFree}}
}

// UseBackplane shares chat and presence through bp (a cluster's: cluster
// mode; call before the server starts): presence counts every node's
// connections through the shared census "presence" (a user is online
// while it has a connection on any node; a dead node's count is removed
// by the reaper after its lease, and its users then go offline after the
// grace period), and the store is bp's (JetStream in a cluster).
func (c *Core) UseBackplane(bp backplane.Node) {
	c.bp = bp
	c.census = bp.Census("presence")
	c.census.Watch()
	c.census.SetOnChange(func(user string) { c.Registry.SetRemote(user, c.census.Remote(user)) })
	c.Registry.OnLocal = func(user string) { c.census.Mark(user, c.localCount(user), nil) }
}

// localCount reads user's connections on this node, for the census.
func (c *Core) localCount(user string) func() int {
	return func() int { return c.Registry.Local(user) }
}

// syncWait bounds the wait for the census copy to catch up (Census.Sync).
const syncWait = 2 * time.Second

// counted has the census write user's local count and calls done
// afterwards (on a single node before it returns, in a cluster on a
// backplane goroutine). Never blocks.
func (c *Core) counted(user string, done func()) {
	c.census.Mark(user, c.localCount(user), func(int, int) { done() })
}

// afterSync runs fn once the census copy (and so the registry's remote
// counts) holds every write made anywhere before the call
// (backplane.AfterSync: at once on a single node, on a backplane worker in
// a cluster); a failure is logged and the copy answers as it is. It
// reports false, having done nothing, when the workers are all busy.
func (c *Core) afterSync(fn func()) bool {
	return backplane.AfterSync(c.bp, c.census, syncWait, func(err error) {
		if err != nil {
			c.log.Warn("presence: census not up to date", "err", err)
		}
		fn()
	})
}

// Config is the shared configuration.
func (c *Core) Config() Config { return c.cfg }

// Start loads the token keys, opens the store and starts the workers.
func (c *Core) Start() error {
	c.startOnce.Do(func() { c.startErr = c.start() })
	return c.startErr
}

func (c *Core) start() error {
	v, err := auth.New(c.jwt)
	if err != nil {
		return err
	}
	c.Verifier = v
	verify := v.Verify
	if !c.jwt.Configured() {
		var once sync.Once
		verify = func(tok string) (auth.Claims, error) {
			once.Do(func() {
				c.log.Warn("chat/presence: a token was rejected because no --jwt-secret, --jwt-public-key or --jwt-jwks is configured")
			})
			return v.Verify(tok)
		}
	}
	c.authPool = auth.NewPool(verify, runtime.NumCPU(), 1024)
	c.work = workers.New(c.cfg.Workers, c.cfg.Queue)
	return nil
}

// Store returns the store, opening it on first use. It may block on disk:
// workers and the notifier only, never an event loop.
func (c *Core) Store() (store.Store, error) {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	if c.stClosed {
		return nil, store.ErrClosed
	}
	if c.st != nil {
		return c.st, nil
	}
	if time.Now().Before(c.stRetry) { // a failing open is retried once a second, not per request
		return nil, c.stErr
	}
	st, err := c.bp.OpenStore(c.dataDir, c.pebbleOptions())
	if err != nil {
		if !c.stFailed {
			c.stFailed = true
			c.log.Error("chat/presence: store unavailable", "err", err)
		}
		c.stErr, c.stRetry = err, time.Now().Add(time.Second)
		c.openErr.Store(&err)
		return nil, err
	}
	c.st = st
	c.opened.Store(&st)
	c.openErr.Store(nil)
	return st, nil
}

// Health implements dialect.Healther for the dialect that reports the
// store (chat): an error while the store refuses writes (free space below
// --store-min-free, a full disk, a fatal store error). Never blocks.
func (c *Core) Health() (string, error) {
	p := c.opened.Load()
	if p == nil {
		if e := c.openErr.Load(); e != nil {
			return "store", *e
		}
		return "store", nil
	}
	if h, ok := (*p).(interface{ Health() error }); ok {
		return "store", h.Health()
	}
	return "store", nil
}

func (c *Core) contacts(user string) ([]string, error) {
	st, err := c.Store()
	if err != nil {
		return nil, err
	}
	return st.Contacts(user)
}

// Shutdown finishes queued work, stops the registry, and flushes and
// closes the store.
func (c *Core) Shutdown() error {
	c.stopOnce.Do(func() {
		if c.Verifier != nil { // started
			c.authPool.Close()
			// Queued work normally finishes at once; on a wedged disk it
			// waits for a store that will not answer: give up after the
			// store's close timeout (closing the store then releases it).
			done := make(chan struct{})
			go func() { c.work.Close(); close(done) }()
			select {
			case <-done:
			case <-time.After(c.cfg.StoreCloseTimeout):
				c.log.Error("chat/presence: store work still running at shutdown; closing the store anyway", "after", c.cfg.StoreCloseTimeout)
			}
		}
		c.Registry.Close()
		c.stMu.Lock()
		defer c.stMu.Unlock()
		c.stClosed = true
		if c.st != nil {
			c.stopErr = c.st.Close()
		}
	})
	return c.stopErr
}

// Accept defers a handshake that carries a token (Authorization: Bearer
// or ?token=) to the engine's pool for verification: an invalid token is
// refused with 401; the verified claims reach the session as
// Request.Accepted (see Gate.Open).
func (c *Core) Accept(req *dialect.Request) error {
	tok := HandshakeToken(req)
	if tok == "" {
		return nil
	}
	return dialect.DeferValue(func() (any, error) {
		if c.Verifier == nil {
			return nil, dialect.Refuse(503, "server starting")
		}
		cl, err := c.Verifier.Verify(tok)
		if err != nil {
			security.Record("auth_failed", "where", "handshake", "path", req.Path, "remote", req.RemoteAddr, "err", err)
			return nil, dialect.Refuse(401, "invalid token: "+err.Error())
		}
		return cl, nil
	})
}

// HandshakeToken is the token of a handshake's "Authorization: Bearer"
// header, else of its ?token= query parameter, else "".
func HandshakeToken(req *dialect.Request) string {
	if a := req.Authorization; len(a) > 7 && strings.EqualFold(a[:7], "Bearer ") {
		return strings.TrimSpace(a[7:])
	}
	if strings.Contains(req.RawQuery, "token=") {
		if q, err := url.ParseQuery(req.RawQuery); err == nil {
			return q.Get("token")
		}
	}
	return ""
}
