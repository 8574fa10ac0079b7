package hub

import (
	"crypto/rand"
	"encoding/json"
	"strings"
)

// alphabet has no 0/O, 1/I/L.
const alphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

func (h *Hub) newCodeLocked() string {
	b := make([]byte, h.codeLen)
	for {
		_, _ = rand.Read(b)
		for i := range b {
			b[i] = alphabet[int(b[i])%len(alphabet)]
		}
		if _, taken := h.rooms[string(b)]; !taken {
			return string(b)
		}
	}
}

func (c *Client) create(req *request) {
	id, ok := clientID(req.ClientID)
	if !ok {
		c.error("missing or invalid clientId")
		return
	}
	maxc := c.h.maxClients
	if len(req.MaxClients) > 0 && string(req.MaxClients) != "null" {
		var n int
		if json.Unmarshal(req.MaxClients, &n) != nil || n < 1 || n > c.h.maxClients {
			c.error("invalid maxClients")
			return
		}
		maxc = n
	}
	if c.current() != nil {
		c.error("already in a room")
		return
	}
	c.h.mu.Lock()
	rm := &room{code: c.h.newCodeLocked(), max: maxc}
	rm.members = []*Client{c}
	c.h.rooms[rm.code] = rm
	c.h.mu.Unlock()
	c.mu.Lock()
	c.room, c.id, c.token = rm, id, newToken()
	tok := c.token
	c.mu.Unlock()
	c.reply(map[string]string{"type": "created", "room": rm.code, "token": tok})
}

func (c *Client) join(req *request) {
	id, ok := clientID(req.ClientID)
	if !ok {
		c.error("missing or invalid clientId")
		return
	}
	code, ok := stringField(req.Room)
	if !ok {
		c.error("missing or invalid room")
		return
	}
	if c.current() != nil {
		c.error("already in a room")
		return
	}
	c.h.mu.Lock()
	rm := c.h.rooms[strings.ToUpper(code)]
	c.h.mu.Unlock()
	if rm == nil {
		c.error("room not found")
		return
	}
	token, hasToken := stringField(req.Token)
	rm.mu.Lock()
	if rm.gone {
		rm.mu.Unlock()
		c.error("room not found")
		return
	}
	var old *Client
	idx := -1
	for i, m := range rm.members {
		if m.id == id {
			old, idx = m, i
			break
		}
	}
	if old != nil && hasToken && token != old.token {
		rm.mu.Unlock()
		c.error("invalid token for clientId")
		return
	}
	if old == nil && len(rm.members) >= rm.max {
		rm.mu.Unlock()
		c.error("room full")
		return
	}
	c.mu.Lock()
	c.room, c.id = rm, id
	if old != nil {
		c.token = old.token
		rm.members[idx] = c
	} else {
		c.token = newToken()
		rm.members = append(rm.members, c)
	}
	tok := c.token
	c.mu.Unlock()
	ids := make([]string, len(rm.members))
	others := make([]Member, 0, len(rm.members))
	for i, m := range rm.members {
		ids[i] = m.id
		if m != c {
			others = append(others, m.m)
		}
	}
	if old != nil { // the joiner goes last in the list it is shown
		ids = append(append(ids[:idx:idx], ids[idx+1:]...), id)
	}
	rm.mu.Unlock()
	c.reply(struct {
		Type    string   `json:"type"`
		Room    string   `json:"room"`
		Clients []string `json:"clients"`
		Token   string   `json:"token"`
	}{"joined", rm.code, ids, tok})
	if old != nil {
		old.mu.Lock()
		old.room = nil
		old.mu.Unlock()
		old.m.Close(4000, "replaced")
		return
	}
	b, _ := json.Marshal(map[string]string{"type": "peer_joined", "clientId": id})
	c.h.fanout(b, others)
}

func (h *Hub) fanout(msg []byte, to []Member) {
	if len(to) == 0 {
		return
	}
	if h.Fanout != nil {
		h.Fanout(msg, to)
		return
	}
	for _, m := range to {
		m.Send(msg)
	}
}

func (c *Client) send(req *request) {
	rm := c.current()
	if rm == nil {
		c.error("not in a room")
		return
	}
	data := req.Data
	if len(data) == 0 {
		data = json.RawMessage("null")
	}
	var to string
	if len(req.To) > 0 && string(req.To) != "null" {
		var ok bool
		if to, ok = stringField(req.To); !ok {
			c.error("invalid target")
			return
		}
	}
	msg, _ := json.Marshal(struct {
		Type string          `json:"type"`
		From string          `json:"from"`
		Data json.RawMessage `json:"data"`
	}{"message", c.id, data})
	rm.mu.Lock()
	var dst []Member
	for _, m := range rm.members {
		if m == c {
			continue
		}
		if to == "" || m.id == to {
			dst = append(dst, m.m)
		}
	}
	rm.mu.Unlock()
	if to != "" && len(dst) == 0 {
		c.error("unknown target: " + to)
		return
	}
	c.h.fanout(msg, dst)
}

func (c *Client) leave() {
	if c.current() == nil {
		c.error("not in a room")
		return
	}
	c.leaveRoom()
}

// leaveRoom removes c from its room, tells the others and deletes an empty
// room.
func (c *Client) leaveRoom() {
	c.mu.Lock()
	rm, id := c.room, c.id
	c.room = nil
	c.mu.Unlock()
	if rm == nil {
		return
	}
	rm.mu.Lock()
	idx := -1
	for i, m := range rm.members {
		if m == c {
			idx = i
			break
		}
	}
	if idx < 0 { // replaced meanwhile
		rm.mu.Unlock()
		return
	}
	rm.members = append(rm.members[:idx], rm.members[idx+1:]...)
	others := make([]Member, 0, len(rm.members))
	for _, m := range rm.members {
		others = append(others, m.m)
	}
	empty := len(rm.members) == 0
	if empty {
		rm.gone = true
	}
	rm.mu.Unlock()
	if empty {
		c.h.mu.Lock()
		if c.h.rooms[rm.code] == rm {
			delete(c.h.rooms, rm.code)
		}
		c.h.mu.Unlock()
		return
	}
	b, _ := json.Marshal(map[string]string{"type": "peer_left", "clientId": id})
	c.h.fanout(b, others)
}
