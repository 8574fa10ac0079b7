// Package hub is the party dialect's room logic shared by the comparison
// peers (bench/peers/gorilla, bench/peers/gws). It is written the way a
// careful Go service usually is: encoding/json, a mutex per room, each
// relayed message encoded once and handed to every member's transport.
//
// The transports own framing, write queues and slow-consumer handling;
// the hub calls Member.Send, which must not block.
package hub

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"sync"
)

// Member is one connection as the hub sees it. Send queues a complete
// text message (shared and immutable: never modify it) and must not
// block; Close closes the connection with a WebSocket close code.
type Member interface {
	Send(msg []byte)
	Close(code int, reason string)
}

// Hub holds the rooms.
type Hub struct {
	maxClients int
	codeLen    int
	// Fanout, when set, delivers one message to many members (a transport
	// that can encode a frame once for all of them). Default: Send each.
	Fanout func(msg []byte, to []Member)

	mu    sync.Mutex // guards rooms
	rooms map[string]*room
}

// New returns a hub whose rooms hold at most maxClients members and whose
// codes have codeLen characters.
func New(maxClients, codeLen int) *Hub {
	return &Hub{maxClients: maxClients, codeLen: codeLen, rooms: map[string]*room{}}
}

type room struct {
	code string
	max  int

	mu      sync.Mutex // guards the following
	gone    bool       // deleted from the hub; join must fail
	members []*Client  // join order
}

// Client is one connection's protocol state. Its methods are called by the
// connection's reader, one at a time.
type Client struct {
	h     *Hub
	m     Member
	mu    sync.Mutex // guards room and id (a replacement clears them from another goroutine)
	room  *room
	id    string
	token string
}

// NewClient attaches a connection.
func (h *Hub) NewClient(m Member) *Client { return &Client{h: h, m: m} }

type request struct {
	Type       string          `json:"type"`
	ClientID   json.RawMessage `json:"clientId"`
	MaxClients json.RawMessage `json:"maxClients"`
	Room       json.RawMessage `json:"room"`
	To         json.RawMessage `json:"to"`
	Data       json.RawMessage `json:"data"`
	Token      json.RawMessage `json:"token"`
}

// Handle processes one text message.
func (c *Client) Handle(msg []byte) {
	var req request
	if err := json.Unmarshal(msg, &req); err != nil {
		c.error("invalid JSON")
		return
	}
	switch req.Type {
	case "create":
		c.create(&req)
	case "join":
		c.join(&req)
	case "send":
		c.send(&req)
	case "leave":
		c.leave()
	case "":
		c.error("missing type")
	default:
		c.error("unknown type: " + req.Type)
	}
}

// HandleBinary answers a binary message.
func (c *Client) HandleBinary() { c.error("binary messages are not supported") }

// Gone removes a disconnected connection from its room.
func (c *Client) Gone() { c.leaveRoom() }

func (c *Client) reply(v any) {
	b, _ := json.Marshal(v)
	c.m.Send(b)
}

func (c *Client) error(text string) {
	c.reply(struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	}{"error", text})
}

func (c *Client) current() *room {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.room
}

func stringField(raw json.RawMessage) (string, bool) {
	var s string
	if len(raw) == 0 || json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

func clientID(raw json.RawMessage) (string, bool) {
	s, ok := stringField(raw)
	return s, ok && len(s) >= 1 && len(s) <= 128
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
