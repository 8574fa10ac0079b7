package scenario

import (
	"fmt"
	"sync/atomic"

	"partyline/bench/internal/dialect"
	"partyline/bench/internal/stats"
	"partyline/bench/internal/wsc"
)

// room is one room of well-behaved members.
type room struct {
	idx     int
	max     int                    // maxClients to create it with (0: server default)
	code    atomic.Pointer[string] // set when the server names the room
	members []*member
	live    atomic.Int32 // members in the room with an open connection
}

func (rm *room) name() string {
	if p := rm.code.Load(); p != nil {
		return *p
	}
	return ""
}

// Member setup states.
const (
	setupPending int32 = iota
	setupDone
	setupFailed
)

// member is one well-behaved client: it creates or joins its room, sends
// on the schedule and accounts for everything it receives.
type member struct {
	c       wsc.Conn
	r       *runner
	room    *room // nil: connect only (idle)
	id      int64 // global index, unique within the run
	slot    int   // position in the room
	cid     string
	creator bool
	direct  bool   // send to one random member instead of broadcasting
	sends   bool   // on the send schedule once in the room
	churn   bool   // churning client: ignores peer events, setup is dial to joined
	storm   *storm // member of a join storm's room: its own accounting (storm.go)
	leaving bool   // we are closing on purpose
	inRoom  bool
	seq     int64
	last    []int64 // per-slot last sequence number, for order checks
	setupAt int64
	setup   atomic.Int32

	// onSetup, when set, replaces the runner's setup accounting (churn).
	onSetup func(m *member, ok bool)
	// onClose, when set, is called after the close is accounted.
	onClose func(m *member)
	// chat, when set, makes this a chat client (chat.go).
	chat *chatMember
}

// maxOrderCheck is the largest room whose members check per-sender order.
const maxOrderCheck = 256

func newMember(r *runner, rm *room, id int64, slot int) *member {
	m := &member{r: r, room: rm, id: id, slot: slot, cid: fmt.Sprintf("%s-%d", r.cfg.RunID, id)}
	m.c.H = m
	m.c.Path = r.d.Path(rm.nameOrEmpty())
	if a := r.cfg.Addrs; len(a) > 1 {
		i := int64(slot)
		if rm == nil {
			i = id
		}
		m.c.Addr = a[i%int64(len(a))]
	}
	return m
}

func (rm *room) nameOrEmpty() string {
	if rm == nil {
		return ""
	}
	return rm.name()
}

func (m *member) ls() *loopState { return m.c.Loop().User.(*loopState) }

func (m *member) setupSucceeded() {
	if m.setup.CompareAndSwap(setupPending, setupDone) {
		if m.onSetup != nil {
			m.onSetup(m, true)
			return
		}
		m.r.setupOK.Add(1)
	}
}

func (m *member) setupFailed() {
	if m.setup.CompareAndSwap(setupPending, setupFailed) {
		if m.onSetup != nil {
			m.onSetup(m, false)
			return
		}
		m.r.setupFail.Add(1)
	}
}

// resetSetup arms the member for its next setup step.
func (m *member) resetSetup() { m.setup.Store(setupPending) }

// Open implements wsc.Handler.
func (m *member) Open(c *wsc.Conn) {
	ls := m.ls()
	ls.rec.C.Opened.Add(1)
	if c.Deflated {
		m.r.deflated.Add(1)
	}
	stats.Record(ls.rec.Handshake, c.OpenAt-c.DialAt)
	stats.Record(ls.rec.Connect, c.ConnectAt-c.DialAt)
	if m.room == nil {
		m.setupSucceeded()
		return
	}
	if m.chat != nil {
		m.chatOpen(c, ls)
		return
	}
	m.setupAt = c.OpenAt
	if m.creator {
		ls.out = m.r.d.AppendCreate(ls.out[:0], m.cid, m.room.name(), m.room.max)
	} else {
		ls.out = m.r.d.AppendJoin(ls.out[:0], m.cid, m.room.name())
	}
	_ = c.WriteText(ls.out)
}

// Message implements wsc.Handler.
func (m *member) Message(c *wsc.Conn, p []byte, now int64) {
	ls := m.ls()
	if m.chat != nil {
		m.chatMessage(c, ls, p, now)
		return
	}
	if m.storm != nil && m.inRoom && isPeerJoined(p) {
		m.storm.announce(now) // 12.5 M of them in a storm: no full parse
		return
	}
	ev, ok := m.r.d.Parse(p)
	if !ok {
		ls.rec.C.Unparsed.Add(1)
		return
	}
	if ev.Reply != nil {
		_ = c.WriteText(ev.Reply)
	}
	switch ev.Kind {
	case dialect.Message:
		m.deliver(ls, &ev, now)
	case dialect.PeerJoined:
		if m.storm != nil {
			m.storm.announce(now)
		} else if !m.churn {
			ls.rec.C.PeerJoined.Add(1)
		}
	case dialect.PeerLeft:
		if !m.churn {
			ls.rec.C.PeerLeft.Add(1)
		}
	case dialect.Created:
		code := string(ev.Room)
		m.room.code.Store(&code)
		ls.rec.C.Created.Add(1)
		m.entered(ls, now)
	case dialect.Joined:
		ls.rec.C.Joined.Add(1)
		m.entered(ls, now)
	case dialect.Error:
		ls.rec.C.ErrorReplies.Add(1)
		m.r.errorReply(ev.Text)
		if !m.inRoom {
			m.setupFailed()
		}
	}
}

// isPeerJoined spots a party or party-v2 peer_joined frame by its first
// bytes, as both encode it: {"type":"peer_joined",...
func isPeerJoined(p []byte) bool {
	const pfx = `{"type":"peer_joined"`
	return len(p) > len(pfx) && string(p[:len(pfx)]) == pfx
}

func (m *member) entered(ls *loopState, now int64) {
	if m.inRoom {
		return
	}
	m.inRoom = true
	m.room.live.Add(1)
	if m.storm != nil {
		m.storm.entered(m, now)
	} else if m.churn {
		stats.Record(ls.rec.Setup, now-m.c.DialAt)
		stats.Record(ls.rec.Join, now-m.setupAt)
	} else {
		stats.Record(ls.rec.Setup, now-m.setupAt)
	}
	if n := len(m.room.members); n <= maxOrderCheck && m.last == nil {
		m.last = make([]int64, n)
	}
	if m.sends {
		ls.senders = append(ls.senders, m)
		ls.sched.n = len(ls.senders)
	}
	m.setupSucceeded()
}

func (m *member) deliver(ls *loopState, ev *dialect.Event, now int64) {
	st, ok := ev.Stamp, ev.HasStamp
	if !ok {
		st, ok = dialect.ParseStamp(ev.Data)
	}
	if !ok {
		ls.rec.C.Unparsed.Add(1)
		return
	}
	if st.I < 0 { // a hostile client's message (hostile --flood-in-rooms): not measured
		return
	}
	ls.rec.Deliver(st.I, st.S, st.T, now)
	if m.last != nil && st.K >= 0 && st.K < int64(len(m.last)) {
		// Direct sends reach a member with gaps; only going backwards
		// (a repeat or an overtaken message) is out of order.
		if st.S <= m.last[st.K] {
			ls.rec.C.Reordered.Add(1)
		}
		m.last[st.K] = st.S
	}
}

// Close implements wsc.Handler.
func (m *member) Close(c *wsc.Conn, err error) {
	ls := m.ls()
	if m.chat != nil {
		m.chat.live.Store(false)
	}
	if m.inRoom {
		m.inRoom = false
		m.room.live.Add(-1)
	}
	if !c.Opened() {
		ls.rec.C.HandshakeErrors.Add(1)
		ls.rec.Closes[closeReason(c, err)]++
	} else if !m.r.stopping.Load() && !m.leaving {
		ls.rec.C.Closed.Add(1)
		ls.rec.Closes[closeReason(c, err)]++
	}
	if c.CloseCode != 0 {
		ls.rec.C.ServerCloses.Add(1)
	}
	m.setupFailed()
	if m.onClose != nil {
		m.onClose(m)
	}
}

func closeReason(c *wsc.Conn, err error) string {
	switch {
	case c.Status != 0:
		return fmt.Sprintf("handshake status %d", c.Status)
	case c.CloseCode != 0:
		return fmt.Sprintf("server close %d", c.CloseCode)
	case err != nil:
		return err.Error()
	}
	return "local close"
}

// send sends one stamped message; intended is when the schedule wanted it.
// Event loop only.
func (m *member) send(ls *loopState, intended, now int64) {
	if !m.inRoom || !m.c.Live() {
		return
	}
	if m.chat != nil {
		m.chatSend(ls, intended, now)
		return
	}
	cfg := m.r.cfg
	size := cfg.SizeMin
	if cfg.SizeMax > cfg.SizeMin {
		size += int(ls.l.Rand() % uint64(cfg.SizeMax-cfg.SizeMin+1))
	}
	to := ""
	want := int64(m.room.live.Load())
	if !m.r.d.EchoesSender() {
		want--
	}
	if m.direct {
		n := len(m.room.members)
		j := int(ls.l.Rand() % uint64(n-1))
		if j >= m.slot {
			j++
		}
		to = m.room.members[j].cid
		want = 1
	}
	m.seq++
	st := dialect.Stamp{T: now, I: m.id, S: m.seq, K: int64(m.slot)}
	ls.out, ls.data = dialect.AppendSized(m.r.d, ls.out[:0], ls.data, m.room.name(), to, st, size)
	if err := m.c.WriteText(ls.out); err != nil {
		return
	}
	ls.rec.C.Sent.Add(1)
	ls.rec.C.Expected.Add(want)
	stats.Record(ls.rec.Lag, now-intended)
	if ls.rec.Msgs != nil {
		k := stats.MsgKey(st.I, st.S)
		a := ls.rec.Msgs[k]
		if a == nil {
			a = &stats.MsgAgg{}
			ls.rec.Msgs[k] = a
		}
		a.Sent, a.Want = now, want
	}
}
