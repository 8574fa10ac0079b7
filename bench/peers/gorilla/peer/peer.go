// Package peer is the gorilla/websocket comparison server: the usual Go
// design, a reader goroutine and a writer goroutine per connection, each
// message written with its own WriteMessage call.
package peer

import (
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"partyline/bench/peers/hub"
)

// Config of the peer; zero values get the defaults beside them.
type Config struct {
	MaxClients   int           // party maxClients limit (1000)
	MaxMessage   int64         // largest inbound message (64 KiB)
	MaxQueue     int           // bytes queued per connection before it is dropped as slow (1 MiB)
	PingInterval time.Duration // keepalive ping period (30 s)
}

// Handler returns the WebSocket handler for the party dialect on any path.
func Handler(cfg Config) http.Handler {
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
	s := &server{cfg: cfg, hub: hub.New(cfg.MaxClients, 4)}
	s.up = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096,
		CheckOrigin: func(*http.Request) bool { return true }}
	return s
}

type server struct {
	cfg Config
	hub *hub.Hub
	up  websocket.Upgrader
}

func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := s.up.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has answered
	}
	c := &conn{s: s, ws: ws, wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.client = s.hub.NewClient(c)
	go c.writeLoop()
	c.readLoop()
}

// conn is one connection: readLoop runs in the handler's goroutine,
// writeLoop in its own.
type conn struct {
	s      *server
	ws     *websocket.Conn
	client *hub.Client
	wake   chan struct{}
	done   chan struct{}
	once   sync.Once

	mu     sync.Mutex // guards the following
	queue  [][]byte
	queued int
	closeC int // close code to send, 0 if none
	closeR string
}

func (c *conn) readLoop() {
	defer func() {
		c.client.Gone()
		c.shut()
		c.ws.Close()
	}()
	c.ws.SetReadLimit(c.s.cfg.MaxMessage)
	deadline := func() { _ = c.ws.SetReadDeadline(time.Now().Add(2 * c.s.cfg.PingInterval)) }
	deadline()
	c.ws.SetPongHandler(func(string) error { deadline(); return nil })
	for {
		typ, msg, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		deadline()
		if typ == websocket.TextMessage {
			c.client.Handle(msg)
		} else {
			c.client.HandleBinary()
		}
	}
}

// Send implements hub.Member.
func (c *conn) Send(msg []byte) {
	c.mu.Lock()
	if c.closeC != 0 {
		c.mu.Unlock()
		return
	}
	if c.queued+len(msg) > c.s.cfg.MaxQueue {
		c.mu.Unlock()
		c.Close(websocket.ClosePolicyViolation, "slow consumer")
		return
	}
	c.queue = append(c.queue, msg)
	c.queued += len(msg)
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// Close implements hub.Member: the writer sends the close frame and ends.
func (c *conn) Close(code int, reason string) {
	c.mu.Lock()
	if c.closeC == 0 {
		c.closeC, c.closeR = code, reason
	}
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (c *conn) shut() { c.once.Do(func() { close(c.done) }) }

func (c *conn) writeLoop() {
	ping := time.NewTicker(c.s.cfg.PingInterval)
	defer ping.Stop()
	defer c.ws.Close()
	for {
		select {
		case <-c.done:
			return
		case <-ping.C:
			if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)) != nil {
				return
			}
			continue
		case <-c.wake:
		}
		c.mu.Lock()
		q, code, reason := c.queue, c.closeC, c.closeR
		c.queue, c.queued = nil, 0
		c.mu.Unlock()
		_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
		for _, msg := range q {
			if c.ws.WriteMessage(websocket.TextMessage, msg) != nil {
				return
			}
		}
		if code != 0 {
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
			return
		}
	}
}
