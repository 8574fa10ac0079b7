package wsc

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Config configures an Engine. The zero value of each field has the default
// documented beside it.
type Config struct {
	Addr        string        // server host:port (required)
	Loops       int           // event loops; 0 means runtime.NumCPU()
	DialTimeout time.Duration // TCP connect timeout; 0 means 10s
	// SourceIPs, when set, are used in turn as the local address of new
	// connections. Each source address has its own ephemeral port range;
	// with one, connect() slows down as the range fills (a linear search
	// in the kernel) and caps a generator near 28,000 connections.
	SourceIPs []net.IP
	// NewLoop, when set, is called once for each event loop, on that loop,
	// before its first connection's handshake is sent. It usually sets
	// Loop.User (per-loop statistics).
	NewLoop func(l *Loop)
	// Deflate offers permessage-deflate (RFC 7692) the way browsers do
	// ("permessage-deflate; client_max_window_bits"); where the server
	// accepts, its compressed frames are inflated (the client itself
	// sends uncompressed frames, which the extension allows).
	Deflate bool
}

// Engine owns the gnet client and its event loops.
type Engine struct {
	cfg    Config
	cli    *gnet.Client
	dialer net.Dialer

	dials atomic.Uint64 // source address rotation

	mu    sync.Mutex // guards the following
	loops map[gnet.EventLoop]*Loop
	list  []*Loop
}

// New starts the event loops.
func New(cfg Config) (*Engine, error) {
	if cfg.Addr == "" {
		return nil, errors.New("wsc: no server address")
	}
	if cfg.DialTimeout == 0 {
		cfg.DialTimeout = 10 * time.Second
	}
	e := &Engine{cfg: cfg, loops: make(map[gnet.EventLoop]*Loop)}
	e.dialer.Timeout = cfg.DialTimeout
	if len(cfg.SourceIPs) > 0 {
		e.dialer.Control = bindNoPort
	}
	opts := []gnet.Option{
		gnet.WithMulticore(true),
		gnet.WithLogger(quietLogger{}),
		gnet.WithReadBufferCap(64 << 10),
		gnet.WithTCPNoDelay(gnet.TCPNoDelay),
	}
	if cfg.Loops > 0 {
		opts = append(opts, gnet.WithNumEventLoop(cfg.Loops))
	}
	cli, err := gnet.NewClient(&handler{e: e}, opts...)
	if err != nil {
		return nil, fmt.Errorf("wsc: %w", err)
	}
	if err := cli.Start(); err != nil {
		return nil, fmt.Errorf("wsc: start: %w", err)
	}
	e.cli = cli
	return e, nil
}

// Dial connects c to the server and sends the WebSocket handshake. It blocks
// for the TCP connect only; the handshake completes later on the loop
// (Handler.Open). Any goroutine except an event loop. c.Path and c.H must be
// set; on error c's handler is not called.
func (e *Engine) Dial(ctx context.Context, c *Conn) error {
	c.DialAt = time.Now().UnixNano()
	d := &e.dialer
	if ips := e.cfg.SourceIPs; len(ips) > 0 {
		dd := e.dialer // a copy: LocalAddr differs per dial
		dd.LocalAddr = &net.TCPAddr{IP: ips[e.dials.Add(1)%uint64(len(ips))]}
		d = &dd
	}
	addr := c.Addr
	if addr == "" {
		addr = e.cfg.Addr
	}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	c.ConnectAt = time.Now().UnixNano()
	// EnrollContext dups the socket, registers the dup and closes nc.
	if _, err := e.cli.EnrollContext(nc, c); err != nil {
		return err
	}
	return nil
}

// Addr is the server address the engine dials.
func (e *Engine) Addr() string { return e.cfg.Addr }

// Loops returns the event loops that have had at least one connection.
func (e *Engine) Loops() []*Loop {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*Loop(nil), e.list...)
}

// Stop closes every connection and stops the loops.
func (e *Engine) Stop() error { return e.cli.Stop() }

// loopOf returns (creating on first use) the Loop of gnet loop el.
// Event loop only (it calls NewLoop there).
func (e *Engine) loopOf(el gnet.EventLoop) *Loop {
	e.mu.Lock()
	l := e.loops[el]
	if l != nil {
		e.mu.Unlock()
		return l
	}
	l = &Loop{el: el, idx: len(e.list), rng: uint64(time.Now().UnixNano()) | 1}
	e.loops[el] = l
	e.list = append(e.list, l)
	e.mu.Unlock()
	if e.cfg.NewLoop != nil {
		e.cfg.NewLoop(l)
	}
	return l
}

// quietLogger drops gnet's informational logging.
type quietLogger struct{}

func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(f string, a ...any) {
	panic(fmt.Sprintf("gnet: "+f, a...))
}

// bindNoPort sets IP_BIND_ADDRESS_NO_PORT so that binding the source
// address leaves the port to connect(), which only needs the 4-tuple to be
// unique.
func bindNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	})
	return errors.Join(err, serr)
}
