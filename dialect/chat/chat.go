// Package chat is the /chat dialect of seed 004: authenticated one-to-one
// and group chat with durable history. Messages are acknowledged only
// after the store has fsync'd them; delivery reaches every connection of
// the recipients (multi-device). See docs/protocols.md "chat and presence" and
// docs/chat.md.
//
// Concurrency: Session methods run on the connection's event loop and do
// no I/O. A request that needs the store runs on the core's workers
// (presence.Gate.Go); the worker sends the replies and deliveries itself
// (Conn.Send is safe from any goroutine) and the connection's next request
// is served after it, back on the loop.
//
// A message the store cannot make durable (free space below
// --store-min-free, a full disk) is refused to its sender alone with
// {"type":"ERROR","msg":"storage full: ..."}; Health reports the store as
// degraded meanwhile. Per-user quotas (quotas) are checked on the loop.
//
// Deliveries reach a user's connections on every node through the
// backplane (UseBackplane): written to the local ones, then published to
// the other nodes' (Bus.PublishRemote), and the store and presence are the
// core's (presence.Core.UseBackplane). On a single node (the default,
// backplane.Local) there are no other nodes: the publication is nothing
// and AUTH is answered at once. In a cluster each node listens to the
// users it has connections of, and SUCCESS to AUTH waits until it does.
package chat

import (
	"errors"
	"slices"
	"strconv"
	"time"

	"partyline/backplane"
	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/pending"
	"partyline/dialect/presence"
	"partyline/internal/security"
	"partyline/routing"
	"partyline/store"
)

// Dialect is /chat.
type Dialect struct {
	core  *presence.Core
	users *routing.Hub  // username -> that user's chat connections
	bus   backplane.Bus // the users' connections on other nodes
	q     *quotas
	// MaxPageBytes caps the stored bytes of one history reply (at least one
	// message is always sent); hasMore tells the client to page on.
	MaxPageBytes int
}

// New returns the chat dialect on core, on a single node.
func New(core *presence.Core) *Dialect {
	cfg := core.Config()
	d := &Dialect{core: core, users: routing.NewHub(), MaxPageBytes: 256 << 10,
		q: newQuotas(cfg.ChatMaxMessagesPerSecond, cfg.ChatMaxBytesPerDay)}
	d.bus = backplane.NewLocal("", nil, 0).Bus("chat", d.users)
	return d
}

// Health implements dialect.Healther: the store is degraded while it
// refuses writes.
func (d *Dialect) Health() (string, error) { return d.core.Health() }

// UseBackplane shares the dialect, and its core, through bp (a cluster's:
// cluster mode; call before the server starts): deliveries reach the
// users' connections on every node (each node subscribes to the users it
// has connections of), history and groups live in bp's store and presence
// counts every node's connections (Core.UseBackplane).
func (d *Dialect) UseBackplane(bp backplane.Node) {
	d.bus = bp.Bus("chat", d.users)
	d.core.UseBackplane(bp)
}

// deliver queues f to every connection of user on every node, except the
// local connection except (nil: none). Safe from any goroutine.
func (d *Dialect) deliver(user string, f *routing.Frame, except dialect.Conn) {
	if room := d.users.Get(user); room != nil {
		room.Broadcast(f, except, false)
	}
	d.bus.PublishRemote(user, f, false, nil)
}

func (d *Dialect) Name() string                      { return "chat" }
func (d *Dialect) Accept(req *dialect.Request) error { return d.core.Accept(req) }
func (d *Dialect) Start() error                      { return d.core.Start() }
func (d *Dialect) Shutdown() error                   { return d.core.Shutdown() }

// Rooms is the number of users with a chat connection (for /metrics).
func (d *Dialect) Rooms() int64 { return d.users.Rooms() }

func (d *Dialect) Open(c dialect.Conn) dialect.Session {
	s := &session{d: d, c: c}
	s.g = presence.NewGate(d.core, c, s)
	s.g.Open()
	return s
}

type session struct {
	d    *Dialect
	c    dialect.Conn
	g    *presence.Gate
	room *routing.Room // the user's connections, once authenticated
	me   *routing.Member
	hold *pending.Op // the bus's hold on the user's subject until the session joins room
}

func (s *session) OnMessage(kind codec.Kind, payload []byte) { s.g.Message(kind, payload) }
func (s *session) OnTimer(now time.Time)                     { s.g.Timer(now) }

func (s *session) OnClose() {
	if s.room != nil {
		s.room.Leave(s.me)
	}
	if s.hold != nil {
		s.hold.Drop()
	}
	s.g.Closed()
}

// Authenticated joins the user's connections, which hold the user's
// subject from now on.
func (s *session) Authenticated(user string) {
	s.me = &routing.Member{ID: strconv.FormatUint(s.c.ID(), 10), Conn: s.c}
	room, _, err := s.d.users.JoinOrCreate(user, s.me, nil, nil)
	if err == nil {
		s.room = room
	}
	if s.hold != nil {
		s.hold.Drop()
		s.hold = nil
	}
}

// AuthenticatedReady implements presence.Readier: the SUCCESS reply waits
// until this node listens to the user's subject (Bus.Ensure; at once on a
// single node), so that nothing sent to the user from another node after
// it is missed.
func (s *session) AuthenticatedReady(user string, ready func()) bool {
	hold := &pending.Op{}
	s.hold = hold
	s.d.bus.Ensure(user, func(release func()) {
		if !hold.Finish(release) { // the session closed meanwhile
			release()
			return
		}
		ready()
	})
	return true
}

func (s *session) Dispatch(payload []byte) {
	var r request
	if bad := decode(payload, &r); bad != "" {
		presence.Error(s.c, bad)
		return
	}
	if r.typ == tAuth {
		s.g.Auth(r.token)
		return
	}
	user := s.g.User()
	if user == "" {
		presence.Error(s.c, "Not authenticated")
		return
	}
	switch r.typ {
	case tDirect:
		if s.checkSelf(r.from, "from", user) {
			if refund, ok := s.d.q.admit(s.c, user, len(r.content), time.Now()); ok {
				s.direct(user, &r, refund)
			}
		}
	case tGroup:
		if s.checkSelf(r.from, "from", user) {
			if refund, ok := s.d.q.admit(s.c, user, len(r.content), time.Now()); ok {
				s.group(user, &r, refund)
			}
		}
	case tJoin, tLeave:
		if s.checkSelf(r.username, "username", user) {
			s.membership(user, &r)
		}
	case tDirectHist:
		s.directHistory(user, &r)
	case tGroupHist:
		s.groupHistory(user, &r)
	case tDisconnect:
		s.g.Disconnect()
	default:
		presence.Error(s.c, "Unknown message type: "+r.typ)
	}
}

// checkSelf rejects a from/username naming someone else (absent means
// the authenticated user).
func (s *session) checkSelf(v, field, user string) bool {
	if v != "" && v != user {
		presence.Error(s.c, field+" must be the authenticated user ("+user+"), not "+v)
		return false
	}
	return true
}

// DeriveChatID is the chatId of a one-to-one conversation when the client
// gives none: the two usernames in byte order, joined by ":".
func DeriveChatID(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + ":" + b
}

func (s *session) direct(user string, r *request, refund func()) {
	chatID := r.chatID
	if chatID == "" {
		chatID = DeriveChatID(user, r.to)
	}
	m := store.Message{From: user, To: r.to, ChatID: chatID, Content: r.content}
	d, core, c := s.d, s.d.core, s.c
	s.g.Go(func() {
		st := open(core, c)
		if st == nil {
			refund()
			return
		}
		m, err := st.Append(store.Direct(m.From, m.To), m)
		if err != nil {
			refund()
			storeError(c, err)
			return
		}
		ack(c, m.ID)
		f := routing.NewText()
		f.SetBuf(appendDirect(f.Buf(), &m))
		f.End()
		if m.To != m.From {
			d.deliver(m.To, f, nil)
		}
		d.deliver(m.From, f, c) // the sender's other devices
		f.Release()
	})
}

func (s *session) group(user string, r *request, refund func()) {
	m := store.Message{From: user, GroupID: r.groupID, Content: r.content}
	d, core, c := s.d, s.d.core, s.c
	s.g.Go(func() {
		st := open(core, c)
		if st == nil {
			refund()
			return
		}
		// One read gives both the membership check and the recipients (in
		// cluster mode each read waits for a JetStream round trip).
		members, err := st.Members(m.GroupID)
		if err != nil {
			refund()
			storeError(c, err)
			return
		}
		if _, in := slices.BinarySearch(members, m.From); !in {
			refund()
			presence.Error(c, "Not a member of group "+m.GroupID)
			return
		}
		m, err = st.Append(store.Group(m.GroupID), m)
		if err != nil {
			refund()
			storeError(c, err)
			return
		}
		ack(c, m.ID)
		f := routing.NewText()
		f.SetBuf(appendGroup(f.Buf(), &m))
		f.End()
		for _, u := range members {
			d.deliver(u, f, c)
		}
		f.Release()
	})
}

// member checks that user is in group, replying ERROR if not.
func member(st store.Store, c dialect.Conn, group, user string) bool {
	ok, err := st.IsMember(group, user)
	if err != nil {
		storeError(c, err)
		return false
	}
	if !ok {
		presence.Error(c, "Not a member of group "+group)
	}
	return ok
}

func (s *session) membership(user string, r *request) {
	join := r.typ == tJoin
	group := r.groupID
	d, core, c := s.d, s.d.core, s.c
	s.g.Go(func() {
		st := open(core, c)
		if st == nil {
			return
		}
		var err error
		verb := " joined group "
		if join {
			err = st.Join(group, user)
		} else {
			err, verb = st.Leave(group, user), " left group "
		}
		switch {
		case errors.Is(err, store.ErrAlreadyMember):
			presence.Error(c, "Already a member of group "+group)
			return
		case errors.Is(err, store.ErrNotMember):
			presence.Error(c, "Not a member of group "+group)
			return
		case err != nil:
			storeError(c, err)
			return
		}
		// The members right after the change, read before the reply: a
		// change the client makes after seeing SUCCESS (or another client
		// told of it makes) is never counted in this INFO.
		members, merr := st.Members(group)
		if join {
			presence.Success(c, "Joined group "+group)
		} else {
			presence.Success(c, "Left group "+group)
		}
		if merr != nil {
			return
		}
		f := routing.NewText()
		f.AppendStr(`{"type":"INFO","msg":`)
		f.SetBuf(codec.AppendString(f.Buf(), user+verb+group))
		f.Append('}')
		f.End()
		for _, u := range members {
			if u != user {
				d.deliver(u, f, nil)
			}
		}
		f.Release()
	})
}

func (s *session) directHistory(user string, r *request) {
	from, to := r.from, r.to
	if from == "" {
		from = user
	}
	if from != user && to != user {
		presence.Error(s.c, "Not a participant of this conversation: from or to must be "+user)
		return
	}
	chatID := r.chatID
	if chatID == "" {
		chatID = DeriveChatID(from, to)
	}
	core, c, limit, before, beforeS, max := s.d.core, s.c, r.limit, r.before, r.beforeS, s.d.MaxPageBytes
	s.g.Go(func() {
		st := open(core, c)
		if st == nil {
			return
		}
		pg, err := st.History(store.Direct(from, to), before, limit, max)
		if err != nil {
			historyError(c, err, beforeS)
			return
		}
		f := routing.NewText()
		f.AppendStr(`{"type":"ONE_TO_ONE_CHAT_HISTORY","chatId":`)
		f.SetBuf(codec.AppendString(f.Buf(), chatID))
		sendPage(c, f, &pg)
	})
}

func (s *session) groupHistory(user string, r *request) {
	group := r.groupID
	core, c, limit, before, beforeS, max := s.d.core, s.c, r.limit, r.before, r.beforeS, s.d.MaxPageBytes
	s.g.Go(func() {
		st := open(core, c)
		if st == nil || !member(st, c, group, user) {
			return
		}
		pg, err := st.History(store.Group(group), before, limit, max)
		if err != nil {
			historyError(c, err, beforeS)
			return
		}
		f := routing.NewText()
		f.AppendStr(`{"type":"GROUP_CHAT_HISTORY","groupId":`)
		f.SetBuf(codec.AppendString(f.Buf(), group))
		sendPage(c, f, &pg)
	})
}

// sendPage finishes a history reply begun in f and sends it.
func sendPage(c dialect.Conn, f *routing.Frame, pg *store.Page) {
	f.AppendStr(`,"messages":[`)
	for i := range pg.Messages {
		if i > 0 {
			f.Append(',')
		}
		m := &pg.Messages[i]
		if m.GroupID != "" {
			f.SetBuf(appendGroup(f.Buf(), m))
		} else {
			f.SetBuf(appendDirect(f.Buf(), m))
		}
	}
	if pg.HasMore {
		f.AppendStr(`],"hasMore":true}`)
	} else {
		f.AppendStr(`],"hasMore":false}`)
	}
	c.Send(f.End(), false)
	f.Release()
}

// open returns the store, replying ERROR to c when it is unavailable.
// Workers only.
func open(core *presence.Core, c dialect.Conn) store.Store {
	st, err := core.Store()
	if err != nil {
		storeError(c, err)
		return nil
	}
	return st
}

func historyError(c dialect.Conn, err error, before string) {
	if errors.Is(err, store.ErrUnknownMessage) {
		presence.Error(c, "Unknown message in before: "+before)
		return
	}
	storeError(c, err)
}

func storeError(c dialect.Conn, err error) {
	if errors.Is(err, store.ErrStorageFull) {
		security.Record("storage_full", "err", err)
		presence.Error(c, "storage full: the server cannot store this now, nothing was saved; try again later")
		return
	}
	if errors.Is(err, store.ErrClosed) {
		presence.Error(c, "Server shutting down: try again later")
		return
	}
	presence.Error(c, "Storage error: "+err.Error())
}

// ack sends {"type":"SUCCESS","msg":"Message sent","messageId":ID}.
func ack(c dialect.Conn, id store.ID) {
	f := routing.NewText()
	f.AppendStr(`{"type":"SUCCESS","msg":"Message sent","messageId":"`)
	f.AppendStr(id.String())
	f.AppendStr(`"}`)
	c.Send(f.End(), false)
	f.Release()
}

// appendDirect appends m in the delivered ONE_TO_ONE_CHAT format.
func appendDirect(b []byte, m *store.Message) []byte {
	b = append(b, `{"type":"ONE_TO_ONE_CHAT","from":`...)
	b = codec.AppendString(b, m.From)
	b = append(b, `,"to":`...)
	b = codec.AppendString(b, m.To)
	b = append(b, `,"content":`...)
	b = codec.AppendString(b, m.Content)
	b = append(b, `,"chatId":`...)
	b = codec.AppendString(b, m.ChatID)
	return appendTail(b, m)
}

// appendGroup appends m in the delivered GROUP_CHAT format.
func appendGroup(b []byte, m *store.Message) []byte {
	b = append(b, `{"type":"GROUP_CHAT","from":`...)
	b = codec.AppendString(b, m.From)
	b = append(b, `,"groupId":`...)
	b = codec.AppendString(b, m.GroupID)
	b = append(b, `,"content":`...)
	b = codec.AppendString(b, m.Content)
	return appendTail(b, m)
}

func appendTail(b []byte, m *store.Message) []byte {
	b = append(b, `,"timestamp":`...)
	b = presence.AppendTime(b, m.Time())
	b = append(b, `,"messageId":"`...)
	b = append(b, m.ID.String()...)
	return append(b, `"}`...)
}

// ErrorFrame implements dialect.ErrorReplier: {"type":"ERROR","msg":text}.
func (d *Dialect) ErrorFrame(text string) *routing.Frame { return presence.MsgFrame("ERROR", text) }
