package scenario

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"partyline/bench/internal/dialect"
	"partyline/bench/internal/jscan"
	"partyline/bench/internal/stats"
	"partyline/bench/internal/wsc"
	"partyline/codec"
)

// The chat scenario (docs/protocols.md, "chat and presence"): Conns users
// u0..uN-1, one /chat connection each, authenticated with an HS256 token
// signed here with --jwt-secret. Users are grouped RoomSize to a group
// (a room of the rooms machinery; JOIN_GROUP when --group-frac > 0). Each
// user sends Rate msg/s, open loop: a GROUP_CHAT to its group with
// probability GroupFrac, else a ONE_TO_ONE_CHAT to a random other user.
// Measured: the durable acknowledgement ({"type":"SUCCESS","msg":"Message
// sent"}) latency per send, acknowledged messages/s, and the delivery
// latency to every recipient (the stamp travels in content as "T I S K x").
//
// Acknowledgements carry no reference to the message; a connection's acks
// are matched to its sends in order (FIFO).

// chatMember is the chat part of a member.
type chatMember struct {
	user    string
	token   string
	group   string
	authed  bool
	live    atomic.Bool // authenticated (and in its group) and open
	pending []int64     // send times awaiting their acknowledgement, oldest first
}

// chatToken signs an HS256 JWT for user.
func chatToken(secret, user string, exp time.Time) string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	claims := codec.AppendString([]byte(`{"sub":`), user)
	claims = append(claims, `,"username":`...)
	claims = codec.AppendString(claims, user)
	claims = append(claims, `,"exp":`...)
	claims = strconv.AppendInt(claims, exp.Unix(), 10)
	claims = append(claims, '}')
	msg := head + "." + enc.EncodeToString(claims)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(msg))
	return msg + "." + enc.EncodeToString(mac.Sum(nil))
}

// initChat gives every member of rooms its user, token and group.
func (r *runner) initChat(rooms []*room) {
	exp := time.Now().Add(time.Hour)
	for _, rm := range rooms {
		for _, m := range rm.members {
			u := "u" + strconv.FormatInt(m.id, 10)
			m.chat = &chatMember{user: u, token: chatToken(r.cfg.JWTSecret, u, exp), group: rm.name()}
			r.chatUsers[m.id] = m
		}
	}
}

func (m *member) chatOpen(c *wsc.Conn, ls *loopState) {
	m.setupAt = c.OpenAt
	ls.out = append(ls.out[:0], `{"type":"AUTH","token":`...)
	ls.out = codec.AppendString(ls.out, m.chat.token)
	ls.out = append(ls.out, '}')
	_ = c.WriteText(ls.out)
}

func (m *member) chatMessage(c *wsc.Conn, ls *loopState, p []byte, now int64) {
	it, ok := jscan.Object(p)
	if !ok {
		ls.rec.C.Unparsed.Add(1)
		return
	}
	var typ, msg, content []byte
	for {
		k, v, ok := it.Next()
		if !ok {
			break
		}
		switch string(k) {
		case "type":
			typ = jscan.Unquote(v)
		case "msg":
			msg = jscan.Unquote(v)
		case "content":
			content = jscan.Unquote(v)
		}
	}
	if it.Err() || typ == nil {
		ls.rec.C.Unparsed.Add(1)
		return
	}
	ch := m.chat
	switch string(typ) {
	case "ONE_TO_ONE_CHAT", "GROUP_CHAT":
		st, ok := dialect.ParseTextStamp(content)
		if !ok {
			ls.rec.C.Unparsed.Add(1)
			return
		}
		ls.rec.Deliver(st.I, st.S, st.T, now)
	case "SUCCESS":
		switch {
		case bytes.HasPrefix(msg, []byte("Message sent")):
			if len(ch.pending) > 0 {
				stats.Record(ls.rec.Ack, now-ch.pending[0])
				ch.pending = ch.pending[1:]
			}
			ls.rec.C.Acked.Add(1)
		case !ch.authed:
			ch.authed = true
			if m.r.cfg.GroupFrac > 0 {
				ls.out = append(ls.out[:0], `{"type":"JOIN_GROUP","groupId":`...)
				ls.out = codec.AppendString(ls.out, ch.group)
				ls.out = append(ls.out, `,"username":`...)
				ls.out = codec.AppendString(ls.out, ch.user)
				ls.out = append(ls.out, '}')
				_ = c.WriteText(ls.out)
				return
			}
			ls.rec.C.Joined.Add(1)
			ch.live.Store(true)
			m.entered(ls, now)
		default: // joined the group
			ls.rec.C.Joined.Add(1)
			ch.live.Store(true)
			m.entered(ls, now)
		}
	case "ERROR":
		ls.rec.C.ErrorReplies.Add(1)
		m.r.errorReply(msg)
		if !m.inRoom {
			m.setupFailed()
		} else if len(ch.pending) > 0 { // a refused send: no ack will come
			ch.pending = ch.pending[1:]
		}
	case "INFO":
		ls.rec.C.PeerJoined.Add(1)
	}
}

// chatSend sends one GROUP_CHAT or ONE_TO_ONE_CHAT. Event loop only.
func (m *member) chatSend(ls *loopState, intended, now int64) {
	cfg := m.r.cfg
	ch := m.chat
	size := cfg.SizeMin
	if cfg.SizeMax > cfg.SizeMin {
		size += int(ls.l.Rand() % uint64(cfg.SizeMax-cfg.SizeMin+1))
	}
	m.seq++
	st := dialect.Stamp{T: now, I: m.id, S: m.seq, K: -1}
	var want int64
	out := ls.out[:0]
	group := cfg.GroupFrac > 0 && float64(ls.l.Rand()%1_000_000) < cfg.GroupFrac*1e6 && len(m.room.members) > 1
	if group {
		want = int64(m.room.live.Load()) - 1
		out = append(out, `{"type":"GROUP_CHAT","from":`...)
		out = codec.AppendString(out, ch.user)
		out = append(out, `,"groupId":`...)
		out = codec.AppendString(out, ch.group)
	} else {
		n := int64(len(m.r.chatUsers))
		j := int64(ls.l.Rand() % uint64(n-1))
		if j >= m.id {
			j++
		}
		to := m.r.chatUsers[j]
		if to != nil && to.chat.live.Load() {
			want = 1
		}
		a, b := min(m.id, j), max(m.id, j)
		out = append(out, `{"type":"ONE_TO_ONE_CHAT","from":`...)
		out = codec.AppendString(out, ch.user)
		out = append(out, `,"to":"u`...)
		out = strconv.AppendInt(out, j, 10)
		out = append(out, `","chatId":"`...)
		out = append(out, cfg.RunID...)
		out = append(out, '-')
		out = strconv.AppendInt(out, a, 10)
		out = append(out, '-')
		out = strconv.AppendInt(out, b, 10)
		out = append(out, '"')
	}
	out = append(out, `,"content":`...)
	pad := size - len(out) - 60
	out = dialect.AppendTextStamp(out, st, max(0, pad))
	out = append(out, '}')
	ls.out = out
	if err := m.c.WriteText(out); err != nil {
		return
	}
	ch.pending = append(ch.pending, now)
	ls.rec.C.Sent.Add(1)
	ls.rec.C.Expected.Add(want)
	stats.Record(ls.rec.Lag, now-intended)
}

func chatValidate(c *Config) error {
	if c.JWTSecret == "" {
		return fmt.Errorf("chat needs --jwt-secret (the server's)")
	}
	if c.Procs > 1 {
		return fmt.Errorf("chat needs a single generator process")
	}
	if c.Conns < 2 {
		return fmt.Errorf("chat needs at least 2 users")
	}
	return nil
}
