package party

// The shared roomStore (UseCluster, --nats): rooms live in the "party"
// registry of the backplane (backplane.Cluster; in package cluster, the pl_party key-value
// bucket), so every node sees one code space, one membership and one
// capacity.
//
//   - room.<CODE> (party-v2: room2.<CODE>, with the slots; v2cluster.go)
//     holds the room: id, maxClients, created and the members
//     in join order, each with the node (backplane.Cluster.Member) and the
//     connection instance that holds the clientId. Creation is a
//     create-if-absent of the key; joins, replacements and leaves are
//     revision-checked updates, retried on conflict, so concurrent joins on
//     any nodes never overfill a room and a code is never given twice.
//   - state.<room id> holds the retained state frame with the highest seq
//     (for joiners after the room's log dropped it).
//   - "message" and "state" frames go through the room's log, a JetStream
//     subject that sequences them (cluster_log.go): offsets, history and
//     recovery work across nodes.
//   - peer_* announcements go through the party Broker (subject per room)
//     with headers (Pl-Ev, Pl-Client, Pl-Member) from which every node
//     keeps the room's roster (clientId -> node, away seats included).
//   - With --party-seat-grace a dropped member's entry stays, marked away
//     with a deadline, on the node that keeps its timer; a dead node's
//     members are marked away by the node that reaps it.
//   - A replaced clientId whose old connection is on another node gets a
//     directed "party.replaced" message: that node closes it with 4000.
//
// Registry calls block: create, join, leave and set_state run on the cluster
// worker pool and finish on the connection's loop (Conn.Do). While one is
// in flight the session holds its later messages, so a pipelined
// join + send keeps its order. A single node's rooms are the local store's
// (local.go), which uses none of this.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"partyline/backplane"
	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/pending"
	"partyline/routing"
)

// Header names of party cluster messages.
const (
	hdrEv     = "Pl-Ev"      // join, leave, replace, state
	hdrClient = "Pl-Client"  // clientId
	hdrMember = "Pl-Member"  // node#incarnation holding the clientId
	hdrInst   = "Pl-Inst"    // connection instance
	hdrRoom   = "Pl-Room"    // room code (directed messages)
	hdrIndex  = "Pl-Index"   // party-v2: the slot index
	hdrRoomID = "Pl-Room-Id" // "close": the room's registry id
	hdrCode   = "Pl-Code"    // "close": the WebSocket close code
)

// shared is the roomStore of a node in a cluster: the rooms are registry
// records and room logs on the backplane; the local routing rooms only
// mirror this node's members of them. It embeds the dialect whose rooms
// it keeps.
type shared struct {
	*Dialect
	n   backplane.Cluster
	b   backplane.Bus
	reg backplane.Registry // the rooms' records and retained states

	rlog backplane.RoomLog // the rooms' logs (cluster_log.go)

	mu      sync.Mutex            // guards batches and feeds
	batches map[string]*joinBatch // rooms with joins waiting or in progress here
	feeds   map[string]*feed      // followed rooms' logs, by code
}

// UseCluster keeps the dialect's rooms in the cluster c (the shared
// roomStore) instead of this node (local). Call before the server starts.
func (d *Dialect) UseCluster(c backplane.Cluster) {
	sh := &shared{Dialect: d, n: c, b: c.Bus(d.prof.name, d.hub), reg: c.Registry("party"), feeds: map[string]*feed{}}
	sh.rlog = c.RoomLog(backplane.RoomLogConfig{Stream: d.prof.stream, Prefix: d.prof.logPrefix, PerRoom: int64(d.cfg.HistorySize) + 1})
	sh.rlog.SetOnLost(sh.onLost)
	sh.b.SetOnMessage(sh.onRemote)
	sh.b.SetLost(d.ErrorFrame(backplane.LostText)) // peer_* announcements; messages and states recover through the log
	d.onGone = sh.feedGone
	c.Handle(d.prof.name+".replaced", sh.onReplaced)
	c.Handle(d.prof.name+".kick", sh.onKick)
	c.OnNodeDead(sh.reap)
	d.rooms, d.broker = sh, sh.b
}

// roomRec is a room in the registry (key room.<CODE>).
type roomRec struct {
	ID      string      `json:"id"`
	Max     int         `json:"max"`
	Created time.Time   `json:"created"`
	Members []recMember `json:"members"`      // join order
	Origin  string      `json:"or,omitempty"` // the creator's handshake Origin (GET /room)

	// party-v2 (v2cluster.go)
	V2     bool    `json:"v2,omitempty"`
	Slots  int     `json:"s,omitempty"`  // slots ever created: the next new clientId's index
	MaxF   float64 `json:"mf,omitempty"` // maxClients as sent: connected entries must stay below it
	URL    string  `json:"u,omitempty"`  // the resolved controller URL
	HasURL bool    `json:"hu,omitempty"`
	Grace  int64   `json:"g,omitempty"` // the host's grace deadline (unix ms), 0 while the host is connected
}

type recMember struct {
	Client string `json:"c"`
	Member string `json:"m"` // backplane.Cluster.Member of the node holding it
	Token  string `json:"t"`
	Inst   string `json:"i"`           // the connection instance
	Away   int64  `json:"a,omitempty"` // away seat: its deadline (unix ms), kept by Member's node
	Index  int    `json:"x,omitempty"` // party-v2: the slot index
	Off    bool   `json:"o,omitempty"` // party-v2: the slot's socket closed (Member's node marked it)

	Meta json.RawMessage `json:"md,omitempty"` // the join hook's metadata (joinhook.go)
}

// size counts the members as GET /api/rooms and GET /room do: party's
// seats (away ones included), party-v2's connected slots.
func (rec *roomRec) size() int {
	if !rec.V2 {
		return len(rec.Members)
	}
	n := 0
	for _, x := range rec.Members {
		if !x.Off {
			n++
		}
	}
	return n
}

// capacity is the room's maxClients.
func (rec *roomRec) capacity() float64 {
	if rec.V2 {
		return rec.MaxF
	}
	return float64(rec.Max)
}

// empty reports whether the room is over: party's has no entry left,
// party-v2's no connected entry.
func (rec *roomRec) empty() bool {
	return rec.size() == 0
}

// roomKey is the registry key of a room: room.<CODE> for party,
// room2.<CODE> for party-v2 (the dialects have code spaces of their own).
func (d *shared) roomKey(code string) string { return d.prof.key + code }
func stateKey(id string) string              { return "state." + id }

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// errBusy answers a request when the cluster worker queue is full.
const errBusy = "server busy: try again"

// pendingOps is a session's operation in flight (the shared store's
// create or join, the join hook's call) and the gate that holds the
// session's later messages meanwhile (loop only). The local store never
// closes the gate.
type pendingOps struct {
	gate pending.Gate
	op   *pending.Op
}

// begin starts an operation; the session's later messages wait.
func (s *session) begin() *pending.Op {
	s.pend.op = &pending.Op{}
	s.pend.gate.Close()
	return s.pend.op
}

// end finishes the operation on the loop and replays held messages.
func (s *session) end() {
	s.pend.op = nil
	s.pend.gate.Open(s.OnMessage)
}

// abort runs from OnClose: an operation in flight is undone.
func (d *shared) abort(s *session) {
	if s.pend.op == nil {
		return
	}
	if undo := s.pend.op.Cancel(); undo != nil {
		d.n.Cleanup(func() error { undo(); return nil })
	}
	s.pend.op = nil
}

// goWork runs fn on the worker pool; false (and an error reply) when busy.
func (d *shared) goWork(s *session, fn func()) bool {
	if d.n.Go(fn) {
		return true
	}
	s.fail(errBusy)
	return false
}

// create makes a party room in the registry (createIn).
func (d *shared) create(s *session, id string, max int, _ listingReq) {
	d.createIn(s, id, roomRec{Max: max}, "")
}

// createV2 makes a party-v2 room in the registry (createIn).
func (d *shared) createV2(s *session, id string, sr *slotRoom, tmpl string, _ listingReq) {
	d.createIn(s, id, roomRec{V2: true, Slots: 1, MaxF: sr.max, HasURL: sr.hasURL}, tmpl)
}

// joinV2 joins a party-v2 room in the registry (join; no token, no since).
func (d *shared) joinV2(s *session, id, code string) { d.join(s, id, code, "", false, nil) }

// keepSeat keeps a closing member's seat away (away) with a seat grace
// or while the node drains.
func (d *shared) keepSeat(s *session) bool {
	if s.d.cfg.SeatGrace > 0 || s.d.draining.Load() {
		d.away(s)
		return true
	}
	return false
}

// listable: the registry has no place for the listing fields yet.
func (*shared) listable() bool { return false }

// localEvents: events come from the registry's changes (cluster_events.go).
func (*shared) localEvents() bool { return false }

// start: the registry and the room logs need nothing started here.
func (*shared) start() error { return nil }

// joinResult is what a worker hands back to the loop.
type joinResult struct {
	err     string // an error reply, "" on success
	code    string
	rec     roomRec // after the join
	me      recMember
	old     *recMember     // the replaced entry
	state   *routing.Frame // retained state (a reference), or nil
	rev     uint64         // its seq
	release func()         // drops the pinned subscription
	feed    *feed          // the room's feed, pinned (cluster_log.go)
	since   *sinceReq      // the join's since
}

// createIn creates the room rec (its ID, Created and Members are
// filled here; a party-v2 controller URL template is resolved with the
// code) with the session as its first member.
func (d *shared) createIn(s *session, id string, rec roomRec, urlTmpl string) {
	op := s.begin()
	c := s.c
	me := recMember{Client: id, Member: d.n.Member(), Inst: randomID(), Meta: s.grant}
	if !rec.V2 {
		me.Token = newToken()
	}
	rec.Origin = originOf(c)
	if !d.goWork(s, func() {
		res := &joinResult{me: me}
		rec.ID, rec.Created, rec.Members = randomID(), time.Now().UTC(), []recMember{me}
		for i := 0; i < 64 && res.code == ""; i++ {
			code := d.code()
			if rec.HasURL {
				rec.URL = resolveURL(urlTmpl, code, d.cfg.InstanceID)
			}
			body, _ := json.Marshal(rec)
			mu := d.emitLock(code)
			if mu != nil {
				mu.Lock()
			}
			ctx, cancel := d.n.Ctx()
			_, err := d.reg.Create(ctx, d.roomKey(code), body)
			cancel()
			if err == nil {
				d.emit(dialect.RoomCreated, code, "")
				d.emitChange(code, nil, rec.Members, false)
			}
			if mu != nil {
				mu.Unlock()
			}
			switch {
			case err == nil:
				res.code, res.rec = code, rec
			case !errors.Is(err, backplane.ErrConflict):
				res.err = "cannot create a room: " + err.Error()
			}
			if res.err != "" {
				break
			}
		}
		if res.code == "" && res.err == "" {
			res.err = "no free room code: try again"
		}
		if res.err != "" {
			if op.Finish(nil) {
				c.Do(func() { d.finishJoin(s, res, true) })
			}
			return
		}
		// Listen to the room before anyone can learn its code.
		d.b.Ensure(res.code, func(release func()) {
			res.release = release
			undo := func() { d.dropMember(res.code, me); release() }
			// The room's log starts with its "open" entry (created's seq).
			if !d.n.Go(func() {
				_, err := d.rlog.AppendSync(res.rec.ID, backplane.LogEntry{Ev: evOpen})
				if err == nil {
					res.feed, err = d.ensureFeed(res.code, &res.rec)
				}
				if err != nil {
					res.err = "cannot create a room: " + err.Error()
					d.dropMember(res.code, me)
					if op.Finish(nil) {
						c.Do(func() { d.finishJoin(s, res, true) })
					} else {
						release()
					}
					return
				}
				if !op.Finish(func() { undo(); d.unpin(res.feed) }) {
					undo()
					d.unpin(res.feed)
					return
				}
				c.Do(func() { d.finishJoin(s, res, true) })
			}) {
				d.dropMember(res.code, me) // the pool is full: the removal must still happen
				res.err = errBusy
				if op.Finish(nil) {
					c.Do(func() { d.finishJoin(s, res, true) })
				} else {
					release()
				}
			}
		})
	}) {
		s.end()
	}
}

func (d *shared) join(s *session, id, code, token string, hasToken bool, since *sinceReq) {
	req := &joinReq{s: s, op: s.begin(), token: token, hasToken: hasToken,
		me:  recMember{Client: id, Member: d.n.Member(), Inst: randomID(), Meta: s.grant},
		res: &joinResult{code: code, since: since}}
	// Listen to the room first: nothing published after the membership
	// update can be missed.
	d.b.Ensure(code, func(release func()) {
		req.res.release = release
		d.queueJoin(req)
	})
}

// joinReq is one join waiting for its room's batch.
type joinReq struct {
	s        *session
	op       *pending.Op
	me       recMember
	token    string
	hasToken bool
	res      *joinResult
}

// joinBatch collects a room's joins on this node: one worker applies all
// that are waiting in one revision-checked update, so a crowd joining one
// room costs a few registry round trips instead of one (and a conflict)
// each.
type joinBatch struct {
	reqs    []*joinReq
	running bool
}

func (d *shared) queueJoin(req *joinReq) {
	code := req.res.code
	d.mu.Lock()
	if d.batches == nil {
		d.batches = map[string]*joinBatch{}
	}
	b := d.batches[code]
	if b == nil {
		b = &joinBatch{}
		d.batches[code] = b
	}
	b.reqs = append(b.reqs, req)
	start := !b.running
	b.running = true
	d.mu.Unlock()
	if start && !d.n.Go(func() { d.runJoins(code) }) {
		d.mu.Lock()
		reqs := b.reqs
		delete(d.batches, code)
		d.mu.Unlock()
		for _, r := range reqs {
			r.res.err = errBusy
			d.complete(r)
		}
	}
}

// runJoins applies the room's waiting joins until none are left. Worker.
func (d *shared) runJoins(code string) {
	for {
		d.mu.Lock()
		b := d.batches[code]
		reqs := b.reqs
		b.reqs = nil
		if len(reqs) == 0 {
			delete(d.batches, code)
			d.mu.Unlock()
			return
		}
		d.mu.Unlock()
		d.applyJoins(code, reqs)
		var state *routing.Frame
		var rev uint64
		var fd *feed
		var ferr error
		loaded := false
		for _, r := range reqs {
			if r.res.err == "" && !loaded {
				loaded = true
				state, rev = d.loadState(r.res.rec.ID)
				fd, ferr = d.ensureFeed(code, &r.res.rec)
			}
			if r.res.err == "" && ferr != nil {
				r.res.err = ferr.Error()
				d.dropMember(code, r.res.me)
			}
			if r.res.err == "" {
				if state != nil {
					state.Retain()
					r.res.state, r.res.rev = state, rev
				}
				d.pin(fd)
				r.res.feed = fd
			}
			d.complete(r)
		}
		d.unpin(fd)
		if state != nil {
			state.Release()
		}
	}
}

// applyJoins adds the joiners to the room with one revision-checked
// update (re-applied on conflict); each request gets its result.
func (d *shared) applyJoins(code string, reqs []*joinReq) {
	if mu := d.emitLock(code); mu != nil {
		mu.Lock()
		defer mu.Unlock()
	}
	for try := 0; ; try++ {
		ctx, cancel := d.n.Ctx()
		e, err := d.reg.Get(ctx, d.roomKey(code))
		cancel()
		var rec roomRec
		if err == nil && json.Unmarshal(e.Value, &rec) != nil {
			err = errText("damaged registry entry")
		}
		if err != nil {
			msg := "cannot join: " + err.Error()
			if errors.Is(err, backplane.ErrNotFound) {
				msg = errRoomNotFound
			}
			for _, r := range reqs {
				r.res.err = msg
			}
			return
		}
		before := d.snapshot(&rec)
		changed := false
		for _, r := range reqs {
			r.res.err, r.res.old = "", nil
			if d.applyJoin(&rec, r) {
				changed = true
			}
		}
		if !changed {
			return
		}
		body, _ := json.Marshal(rec)
		ctx, cancel = d.n.Ctx()
		_, err = d.reg.Update(ctx, d.roomKey(code), body, e.Revision)
		cancel()
		if err == nil {
			for _, r := range reqs {
				if r.res.err == "" {
					r.res.rec = rec // every joiner of the batch sees the whole batch
				}
			}
			d.emitChange(code, before, rec.Members, false)
			return
		}
		if !errors.Is(err, backplane.ErrConflict) || try >= 200 {
			for _, r := range reqs {
				r.res.err = "cannot join: " + err.Error()
			}
			return
		}
		backoff(try)
	}
}

// applyJoin adds r's joiner to rec, replacing the clientId's entry or
// checking the capacity; false (and r.res.err) when refused.
func (d *shared) applyJoin(rec *roomRec, r *joinReq) bool {
	if rec.V2 {
		return applyJoinV2(rec, r)
	}
	me := r.me
	me.Token = ""
	next := rec.Members[:0:0]
	for _, x := range rec.Members {
		if x.Client != me.Client {
			next = append(next, x)
			continue
		}
		switch {
		case r.hasToken && r.token != x.Token:
			r.res.err = errBadToken.Error()
			return false
		case !r.hasToken && d.cfg.StrictReconnect:
			r.res.err = errNeedToken.Error()
			return false
		}
		old := x
		r.res.old, me.Token = &old, x.Token // the token belongs to the clientId
	}
	if r.res.old == nil && len(rec.Members) >= rec.Max {
		r.res.err = errRoomFull
		return false
	}
	if me.Token == "" {
		me.Token = newToken()
	}
	rec.Members = append(next, me)
	r.res.me = me
	return true
}

// pin takes another reference to fd (see ensureFeed).
func (d *shared) pin(fd *feed) {
	d.mu.Lock()
	fd.pins++
	d.mu.Unlock()
}

// complete hands the join's result back to its connection's loop, or
// undoes it when the connection closed meanwhile. Worker.
func (d *shared) complete(r *joinReq) {
	res, s := r.res, r.s
	undo := res.release
	if res.err == "" {
		me := res.me
		undo = func() {
			if res.state != nil {
				res.state.Release()
			}
			d.dropMember(res.code, me)
			d.unpin(res.feed)
			res.release()
		}
	}
	if !r.op.Finish(undo) {
		undo()
		return
	}
	s.c.Do(func() { d.finishJoin(s, res, false) })
}

// finishJoin completes a create or join on the loop: the local room (the
// feed's), the created/joined reply (with the state, or what a since
// recovers), and the announcements.
func (d *shared) finishJoin(s *session, res *joinResult, created bool) {
	if res.err != "" {
		defer s.end()
		if res.release != nil {
			res.release()
		}
		if res.state != nil {
			res.state.Release()
		}
		s.fail(res.err)
		return
	}
	m := newMember(res.me.Client, s.c)
	if res.rec.V2 {
		m = slotMember(res.me.Client, res.me.Index, s.c)
	}
	pm := m.Data.(*member)
	pm.token, pm.inst, pm.meta = res.me.Token, res.me.Inst, res.me.Meta
	r := res.feed.room
	st := r.Ext().(*roomState)
	old, err := r.Join(m, func(*routing.Member) error { return nil }, func(members []*routing.Member) {
		st.mu.Lock()
		for _, x := range res.rec.Members {
			st.roster[x.Client] = x.Member
			st.seat(x)
		}
		st.mu.Unlock()
		if res.state != nil {
			d.keepState(st, res.state, res.rev)
		}
		switch {
		case res.rec.V2 && created:
			s.sendCreatedV2(r, res.rec.URL, res.rec.HasURL)
		case res.rec.V2:
			s.sendJoinedSlots(r, m, peersOf(&res.rec, m.ID), slotMetas(&res.rec), res.rec.URL, res.rec.HasURL)
		case created:
			s.sendCreated(r, m)
		default:
			s.sendJoinedList(r, m, res.rec.Members, res.since)
		}
	})
	if err == routing.ErrRoomGone {
		// The room's last local member left meanwhile and its feed
		// stopped: follow the room again and retry.
		d.unpin(res.feed)
		res.feed = nil
		op := &pending.Op{}
		s.pend.op = op
		if !d.n.Go(func() {
			fd, err := d.ensureFeed(res.code, &res.rec)
			res.feed = fd
			if err != nil {
				res.err = err.Error()
				d.dropMember(res.code, res.me)
				if op.Finish(nil) {
					s.c.Do(func() { d.finishJoin(s, res, created) })
				} else {
					res.release()
					if res.state != nil {
						res.state.Release()
					}
				}
				return
			}
			undo := func() {
				if res.state != nil {
					res.state.Release()
				}
				d.dropMember(res.code, res.me)
				d.unpin(fd)
				res.release()
			}
			if !op.Finish(undo) {
				undo()
				return
			}
			s.c.Do(func() { d.finishJoin(s, res, created) })
		}) {
			res.err = errBusy
			d.dropMember(res.code, res.me)
			d.finishJoin(s, res, created)
		}
		return
	}
	defer s.end()
	defer res.release()
	defer d.unpin(res.feed)
	if res.state != nil {
		res.state.Release()
	}
	s.room, s.me = r, m
	if old != nil { // the old connection of this clientId was here
		old.Data.(*member).replaced.Store(true)
		if oc, ok := old.Conn.(interface{ Close(uint16, string) }); ok {
			oc.Close(4000, "replaced")
		}
	}
	if created {
		d.origins.roomCreated(originOf(s.c))
		return
	}
	if res.old != nil && res.old.Off { // party-v2: a slot reclaimed
		d.announceCode(r.Name, d.prof.peerJoined, "join", res.me, s.c)
		return
	}
	if res.old != nil {
		// A replacement: nobody sees peer_left/peer_joined (an away seat's
		// return is peer_back); the node of the old connection closes it,
		// every node updates its roster.
		node, _ := backplane.MemberNode(res.old.Member)
		if node != d.n.ID() && res.old.Away == 0 {
			d.n.Direct(node, d.prof.name+".replaced", backplane.Header{hdrRoom: {res.code}, hdrClient: {res.me.Client}, hdrInst: {res.old.Inst}}, nil)
		}
		if res.old.Away != 0 {
			d.announceCode(r.Name, peerBack, "back", res.me, s.c)
			return
		}
		f := routing.NewTextFrom(nil)
		hdr := backplane.Header{hdrEv: {"replace"}, hdrClient: {res.me.Client}, hdrMember: {res.me.Member}}
		if d.prof.slots {
			hdr.Set(hdrIndex, itoa(res.me.Index)) // the other nodes keep the slot's clientId
		}
		d.b.PublishRemote(res.code, f, false, hdr)
		f.Release()
		return
	}
	d.announceCode(r.Name, d.prof.peerJoined, "join", res.me, s.c)
}

func (s *session) sendCreated(r *routing.Room, m *routing.Member) {
	f := routing.NewText()
	f.AppendStr(`{"type":"created","room":`)
	f.SetBuf(codec.AppendString(f.Buf(), r.Name))
	s.d.appendPlace(f)
	f.AppendStr(`,"token":`)
	f.SetBuf(codec.AppendString(f.Buf(), m.Data.(*member).token))
	appendOffset(f, r)
	f.Append('}')
	s.c.Send(f.End(), false)
	f.Release()
}

// sendJoinedList queues "joined" with the cluster's member list (and the
// retained state); it runs under the local room's lock.
func (s *session) sendJoinedList(r *routing.Room, m *routing.Member, members []recMember, since *sinceReq) {
	s.sendJoinedWith(r, m, func(f *routing.Frame) {
		for i, x := range members {
			if i > 0 {
				f.Append(',')
			}
			f.SetBuf(codec.AppendString(f.Buf(), x.Client))
		}
		f.Append(']')
		n := 0
		for _, x := range members {
			if x.Away != 0 {
				if n == 0 {
					f.AppendStr(`,"away":[`)
				} else {
					f.Append(',')
				}
				f.SetBuf(codec.AppendString(f.Buf(), x.Client))
				n++
			}
		}
		if n > 0 {
			f.Append(']')
		}
		n = 0
		for _, x := range members {
			if x.Meta != nil {
				n = appendMetaEntry(f, n, codec.AppendString(nil, x.Client), x.Meta)
			}
		}
		if n > 0 {
			f.Append('}')
		}
	}, since)
}

// leave leaves the room: local fan-out stops at once; the registry
// update and peer_left (to every node) follow on a worker, so that
// peer_left is only sent for a member that really left (not one replaced
// meanwhile).
func (d *shared) leave(s *session, r *routing.Room, m *routing.Member) {
	removed, remaining := r.Leave(m)
	if !removed {
		return
	}
	if remaining == 0 {
		dropState(r)
	}
	pm := m.Data.(*member)
	me := recMember{Client: m.ID, Member: d.n.Member(), Inst: pm.inst}
	d.n.Cleanup(func() error { return d.removeMember(r.Name, me, true) })
}

// dropMember queues the removal of me's entry from the room on the
// node's clean-up queue (retried until NATS takes it). Never blocks.
func (d *shared) dropMember(code string, me recMember) {
	d.n.Cleanup(func() error { return d.removeMember(code, me, false) })
}

// removeMember removes the entry of me (same connection instance) from
// the room, deletes an emptied room, and with announce publishes peer_left
// to every node (a party-v2 slot is marked off instead: it stays for the
// room's life). An error means the registry could not be reached (try
// again: it is idempotent). Worker.
func (d *shared) removeMember(code string, me recMember, announce bool) error {
	if d.prof.slots {
		return d.markOff(code, me, announce)
	}
	removed, err := d.updateRoom(code, func(rec *roomRec) []recMember {
		for i, x := range rec.Members {
			if x.Client == me.Client && x.Inst == me.Inst {
				rec.Members = append(rec.Members[:i:i], rec.Members[i+1:]...)
				return []recMember{x}
			}
		}
		return nil
	})
	if announce {
		for _, x := range removed {
			d.announceLeft(code, x)
		}
	}
	return err
}

// announceLeft publishes peer_left for x to the room on every node.
func (d *shared) announceLeft(code string, x recMember) {
	d.announceCode(code, d.prof.peerLeft, "leave", x, nil)
}

// announceCode publishes prefix+x's clientId+"}" to the room code on
// every node (here, to every member but except), with the roster event ev.
func (d *shared) announceCode(code, prefix, ev string, x recMember, except routing.Sender) {
	f := routing.NewText()
	f.AppendStr(prefix)
	hdr := backplane.Header{hdrEv: {ev}, hdrClient: {x.Client}, hdrMember: {x.Member}}
	if d.prof.slots {
		f.SetBuf(codec.AppendInt(f.Buf(), int64(x.Index)))
		hdr.Set(hdrIndex, itoa(x.Index))
	} else {
		f.SetBuf(codec.AppendString(f.Buf(), x.Client))
	}
	if ev == "join" || ev == "back" {
		appendMeta(f, x.Meta)
	}
	f.Append('}')
	f.End()
	if r := d.hub.Get(code); r != nil {
		if st, ok := r.Ext().(*roomState); ok {
			st.mu.Lock()
			st.rosterEvent(ev, x)
			st.mu.Unlock()
		}
		r.Broadcast(f, except, false)
	}
	d.b.PublishRemote(code, f, false, hdr)
	f.Release()
}

// away keeps the session's seat for --party-seat-grace: the local
// membership ends at once; the registry marks the entry away with its
// deadline (kept by this node's timer) and the others get peer_away.
// While the node drains, the registry is left as it is: the node that
// reaps this one when it has left marks its members away. Loop.
func (d *shared) away(s *session) {
	r, m := s.room, s.me
	s.room, s.me = nil, nil
	r.Leave(m)
	if d.draining.Load() {
		return
	}
	me := recMember{Client: m.ID, Member: d.n.Member(), Inst: m.Data.(*member).inst}
	deadline := time.Now().Add(d.cfg.SeatGrace).UnixMilli()
	work := func() error {
		marked, err := d.updateRoom(r.Name, func(rec *roomRec) []recMember {
			for i, x := range rec.Members {
				if x.Client == me.Client && x.Inst == me.Inst && x.Away == 0 {
					rec.Members[i].Away, rec.Members[i].Member = deadline, me.Member
					return []recMember{rec.Members[i]}
				}
			}
			return nil
		})
		for _, x := range marked {
			d.announceCode(r.Name, `{"type":"peer_away","clientId":`, "away", x, nil)
			d.expireAway(r.Name, x)
		}
		return err
	}
	d.n.Cleanup(work)
}

// expireAway removes the away entry x when its deadline passes, unless
// its member came back (the entry changed), with peer_left.
func (d *shared) expireAway(code string, x recMember) {
	wait := time.Until(time.UnixMilli(x.Away))
	time.AfterFunc(max(wait, 0), func() {
		work := func() error {
			removed, err := d.updateRoom(code, func(rec *roomRec) []recMember {
				for i, y := range rec.Members {
					if y.Client == x.Client && y.Inst == x.Inst && y.Away != 0 {
						rec.Members = append(rec.Members[:i:i], rec.Members[i+1:]...)
						return []recMember{y}
					}
				}
				return nil
			})
			for _, y := range removed {
				d.announceLeft(code, y)
			}
			return err
		}
		d.n.Cleanup(work)
	})
}

// purgeRoom removes an emptied room's retained state and log, on the
// clean-up queue (retried until both are gone: a purge of what is already
// gone succeeds, so a run again is harmless).
func (d *shared) purgeRoom(id string) {
	d.n.Cleanup(func() error {
		ctx, cancel := d.n.Ctx()
		err := d.reg.Purge(ctx, stateKey(id))
		cancel()
		if err != nil && !errors.Is(err, backplane.ErrNotFound) {
			return err
		}
		if err := d.rlog.Purge(id); err != nil && !errors.Is(err, backplane.ErrNotFound) {
			return err
		}
		return nil
	})
}

// errConflicts is updateRoom's answer after too many conflicting updates.
var errConflicts = errText("too many concurrent updates")

// updateRoom applies fn to the room's record with a revision-checked
// update (retried) and returns what fn removed. An emptied room is deleted
// with its state. An error means the registry could not be reached or
// kept changing (a missing or damaged record is not one: nothing to do).
// Worker.
func (d *shared) updateRoom(code string, fn func(rec *roomRec) []recMember) ([]recMember, error) {
	kv := d.reg
	if mu := d.emitLock(code); mu != nil {
		mu.Lock()
		defer mu.Unlock()
	}
	for try := 0; try < 200; try++ {
		ctx, cancel := d.n.Ctx()
		e, err := kv.Get(ctx, d.roomKey(code))
		if err != nil {
			cancel()
			if errors.Is(err, backplane.ErrNotFound) {
				return nil, nil
			}
			return nil, err
		}
		var rec roomRec
		if json.Unmarshal(e.Value, &rec) != nil {
			cancel()
			return nil, nil
		}
		before := d.snapshot(&rec)
		removed := fn(&rec)
		if len(removed) == 0 {
			cancel()
			return nil, nil
		}
		if rec.empty() {
			err = kv.Delete(ctx, d.roomKey(code), e.Revision)
			if err == nil {
				d.purgeRoom(rec.ID)
			}
		} else {
			body, _ := json.Marshal(rec)
			_, err = kv.Update(ctx, d.roomKey(code), body, e.Revision)
		}
		cancel()
		if err == nil {
			d.emitChange(code, before, rec.Members, rec.empty())
			return removed, nil
		}
		if !errors.Is(err, backplane.ErrConflict) {
			return nil, err
		}
		backoff(try)
	}
	return nil, errConflicts
}

// onRemote sees every party message from another node (dispatcher
// goroutine): it keeps rosters and state, and lets the broker deliver the
// rest.
func (d *shared) onRemote(code string, m backplane.Msg) bool {
	ev := m.Header.Get(hdrEv)
	if ev == "" {
		return false
	}
	r := d.hub.Get(code)
	if r == nil {
		return true
	}
	st, _ := r.Ext().(*roomState)
	if st == nil {
		return ev == "replace" || ev == "close"
	}
	x := recMember{Client: m.Header.Get(hdrClient), Member: m.Header.Get(hdrMember)}
	if v := m.Header.Get(hdrIndex); v != "" {
		x.Index, _ = strconv.Atoi(v)
	}
	switch ev {
	case "close": // party-v2: the room ended (close_room, host grace)
		closeCode, err := strconv.ParseUint(m.Header.Get(hdrCode), 10, 16)
		if err != nil {
			closeCode = CloseRoomEnded
		}
		d.closeLocal(code, m.Header.Get(hdrRoomID), uint16(closeCode))
		return true
	case "join", "replace", "back", "away", "leave":
		st.mu.Lock()
		st.rosterEvent(ev, x)
		st.mu.Unlock()
		return ev == "replace"
	}
	return false
}

// onReplaced closes a local connection whose clientId joined again on
// another node.
func (d *shared) onReplaced(m backplane.Msg) { d.closeMember(m, 4000, "replaced") }

// closeMember closes the local connection a directed message names (room,
// clientId and connection instance) with code and reason. Its entry in the
// record has changed already, so its session does nothing more for it.
func (d *shared) closeMember(m backplane.Msg, code uint16, reason string) {
	r := d.hub.Get(m.Header.Get(hdrRoom))
	if r == nil {
		return
	}
	x := r.Lookup(m.Header.Get(hdrClient))
	if x == nil || x.Data.(*member).inst != m.Header.Get(hdrInst) {
		return
	}
	x.Data.(*member).replaced.Store(true)
	r.Leave(x)
	if oc, ok := x.Conn.(interface{ Close(uint16, string) }); ok {
		oc.Close(code, reason)
	}
}

// reap removes a dead node's members from every room, with peer_left. It
// goes through every room it could list and returns the first registry
// error (the backplane runs it again: a room it changed no longer holds
// the dead node's members).
func (d *shared) reap(g backplane.Gone) error {
	n := d.n
	ctx, cancel := n.Ctx()
	keys, first := d.reg.Keys(ctx, d.prof.key) // on an error, what was listed before it
	cancel()
	for _, k := range keys {
		code := strings.TrimPrefix(k, d.prof.key)
		var err error
		if d.prof.slots {
			err = d.reapV2(code, g)
		} else {
			err = d.reapRoom(code, g)
		}
		if first == nil {
			first = err
		}
	}
	return first
}

// reapRoom removes a dead node's members from one party-v1 room.
func (d *shared) reapRoom(code string, g backplane.Gone) error {
	n := d.n
	// With seat grace a dead node's members become away seats kept
	// by this node (those already away keep their deadline); without
	// it, or past the deadline, they leave.
	var gone, away, kept []recMember
	now := time.Now().UnixMilli()
	changed, err := d.updateRoom(code, func(rec *roomRec) []recMember {
		gone, away, kept = nil, nil, nil
		next := rec.Members[:0:0]
		for _, x := range rec.Members {
			switch {
			case !g.Holds(x.Member):
			case d.cfg.SeatGrace <= 0 || (x.Away != 0 && x.Away <= now):
				gone = append(gone, x)
				continue
			case x.Away == 0:
				x.Away, x.Member = now+d.cfg.SeatGrace.Milliseconds(), n.Member()
				away = append(away, x)
			default:
				x.Member = n.Member()
				kept = append(kept, x)
			}
			next = append(next, x)
		}
		rec.Members = next
		return append(append(append([]recMember(nil), gone...), away...), kept...)
	})
	if len(changed) == 0 {
		return err // nil, or nothing changed
	}
	for _, x := range gone {
		d.announceLeft(code, x)
	}
	for _, x := range away {
		d.announceCode(code, `{"type":"peer_away","clientId":`, "away", x, nil)
		d.expireAway(code, x)
	}
	for _, x := range kept {
		d.expireAway(code, x)
	}
	return nil
}

// roomInfo reads a room from the registry for GET /api/rooms/{code}.
// Blocks (an HTTP goroutine).
func (d *shared) roomInfo(code string) (roomRec, bool) {
	ctx, cancel := d.n.Ctx()
	defer cancel()
	e, err := d.reg.Get(ctx, d.roomKey(code))
	if err != nil {
		return roomRec{}, false
	}
	var rec roomRec
	return rec, json.Unmarshal(e.Value, &rec) == nil
}

func newToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// backoff sleeps a little before a retried update, more after each try,
// with jitter so that racing nodes spread out.
func backoff(try int) {
	d := time.Duration(1+min(try, 20)) * 200 * time.Microsecond
	time.Sleep(d + mrand.N(d))
}
