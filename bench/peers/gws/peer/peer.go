// Package peer is the lxzan/gws comparison server: gws's event API (a read
// goroutine per connection, asynchronous write queues) and its
// Broadcaster, which encodes a relayed frame once for all receivers.
package peer

import (
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lxzan/gws"

	"partyline/bench/peers/hub"
)

// Config of the peer; zero values get the defaults beside them.
type Config struct {
	MaxClients   int           // party maxClients limit (1000)
	MaxMessage   int           // largest inbound message (64 KiB)
	MaxQueue     int64         // bytes queued per connection before it is dropped as slow (1 MiB)
	PingInterval time.Duration // keepalive ping period (30 s)
}

// Server is a gws server for the party dialect on any path.
type Server struct {
	cfg   Config
	hub   *hub.Hub
	up    *gws.Upgrader
	http  *http.Server
	conns sync.Map // *gws.Conn -> *conn
	stop  chan struct{}
}

// New returns a server; Serve runs it.
func New(cfg Config) *Server {
	if cfg.MaxClients == 0 {
		cfg.MaxClients = 1000
	}
	if cfg.MaxMessage == 0 {
		cfg.MaxMessage = 64 << 10
	}
	if cfg.MaxQueue == 0 {
		cfg.MaxQueue = 1 << 20
	}
	if cfg.PingInterval == 0 {
		cfg.PingInterval = 30 * time.Second
	}
	s := &Server{cfg: cfg, hub: hub.New(cfg.MaxClients, 4), stop: make(chan struct{})}
	s.hub.Fanout = s.fanout
	s.up = gws.NewUpgrader(s, &gws.ServerOption{
		ReadMaxPayloadSize: cfg.MaxMessage,
		CheckUtf8Enabled:   true,
		HandshakeTimeout:   10 * time.Second,
	})
	// net/http accepts and parses the handshake (gws's own RunListener
	// spins on a closed listener).
	s.http = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	return s
}

// ServeHTTP upgrades and runs the connection's read loop.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := s.up.Upgrade(w, r)
	if err != nil {
		return
	}
	ws.ReadLoop()
}

// Serve accepts on ln until Close.
func (s *Server) Serve(ln net.Listener) error {
	go s.pinger()
	err := s.http.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Close stops accepting and the pinger. Upgraded connections end with the
// process.
func (s *Server) Close() {
	close(s.stop)
	_ = s.http.Close()
}

type conn struct {
	s      *Server
	ws     *gws.Conn
	client *hub.Client
	queued atomic.Int64
	closed atomic.Bool
}

func (s *Server) pinger() {
	t := time.NewTicker(s.cfg.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		s.conns.Range(func(_, v any) bool {
			c := v.(*conn)
			c.ws.Async(func() { _ = c.ws.WritePing(nil) })
			return true
		})
	}
}

// OnOpen implements gws.Event.
func (s *Server) OnOpen(ws *gws.Conn) {
	c := &conn{s: s, ws: ws}
	c.client = s.hub.NewClient(c)
	s.conns.Store(ws, c)
	_ = ws.SetDeadline(time.Now().Add(2 * s.cfg.PingInterval))
}

// OnClose implements gws.Event.
func (s *Server) OnClose(ws *gws.Conn, _ error) {
	if v, ok := s.conns.LoadAndDelete(ws); ok {
		c := v.(*conn)
		c.closed.Store(true)
		c.client.Gone()
	}
}

// OnPing implements gws.Event.
func (s *Server) OnPing(ws *gws.Conn, p []byte) {
	_ = ws.SetDeadline(time.Now().Add(2 * s.cfg.PingInterval))
	_ = ws.WritePong(p)
}

// OnPong implements gws.Event.
func (s *Server) OnPong(ws *gws.Conn, _ []byte) {
	_ = ws.SetDeadline(time.Now().Add(2 * s.cfg.PingInterval))
}

// OnMessage implements gws.Event.
func (s *Server) OnMessage(ws *gws.Conn, m *gws.Message) {
	defer m.Close()
	_ = ws.SetDeadline(time.Now().Add(2 * s.cfg.PingInterval))
	v, ok := s.conns.Load(ws)
	if !ok {
		return
	}
	c := v.(*conn)
	if m.Opcode == gws.OpcodeText {
		c.client.Handle(m.Bytes()) // Handle copies what it keeps
	} else {
		c.client.HandleBinary()
	}
}

// reserve accounts n more queued bytes, closing a slow consumer.
func (c *conn) reserve(n int64) bool {
	if c.closed.Load() {
		return false
	}
	if c.queued.Add(n) > c.s.cfg.MaxQueue {
		c.queued.Add(-n)
		c.Close(1008, "slow consumer")
		return false
	}
	return true
}

// Send implements hub.Member.
func (c *conn) Send(msg []byte) {
	n := int64(len(msg))
	if !c.reserve(n) {
		return
	}
	c.ws.WriteAsync(gws.OpcodeText, msg, func(error) { c.queued.Add(-n) })
}

// Close implements hub.Member.
func (c *conn) Close(code int, reason string) {
	if c.closed.Swap(true) {
		return
	}
	c.ws.Async(func() { _ = c.ws.WriteClose(uint16(code), []byte(reason)) })
}

// fanout encodes the frame once and queues it on every receiver.
func (s *Server) fanout(msg []byte, to []hub.Member) {
	b := gws.NewBroadcaster(gws.OpcodeText, msg)
	defer b.Close()
	n := int64(len(msg))
	for _, m := range to {
		c := m.(*conn)
		if !c.reserve(n) {
			continue
		}
		_ = b.Broadcast(c.ws)
		c.ws.Async(func() { c.queued.Add(-n) }) // runs after the frame is written: the queue is FIFO
	}
}
