package party

// Cluster mode (--nats): rooms live in the pl_party key-value bucket, so
// every node sees one code space, one membership and one capacity.
//
//   - room.<CODE> holds the room: id, maxClients, created and the members
//     in join order, each with the node (cluster.Node.Member) and the
//     connection instance that holds the clientId. Creation is a
//     create-if-absent of the key; joins, replacements and leaves are
//     revision-checked updates, retried on conflict, so concurrent joins on
//     any nodes never overfill a room and a code is never given twice.
//   - state.<room id> holds the retained state frame; its revision orders
//     state updates across nodes (latest wins).
//   - Traffic goes through the party Broker (subject per room). peer_*
//     and state messages carry headers (Pl-Ev, Pl-Client, Pl-Member,
//     Pl-Rev) from which every node keeps the room's roster (clientId ->
//     node) for targeted sends.
//   - A replaced clientId whose old connection is on another node gets a
//     directed "party.replaced" message: that node closes it with 4000.
//
// KV calls block: create, join, leave and set_state run on the cluster
// worker pool and finish on the connection's loop (Conn.Do). While one is
// in flight the session holds its later messages, so a pipelined
// join + send keeps its order. Single-node mode never comes here.

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"partyline/cluster"
	"partyline/codec"
	"partyline/dialect/internal/pending"
	"partyline/routing"
)

// Header names of party cluster messages.
const (
	hdrEv     = "Pl-Ev"     // join, leave, replace, state
	hdrClient = "Pl-Client" // clientId
	hdrMember = "Pl-Member" // node#incarnation holding the clientId
	hdrInst   = "Pl-Inst"   // connection instance
	hdrRoom   = "Pl-Room"   // room code (directed messages)
	hdrRev    = "Pl-Rev"    // state revision
)

// clustered is the dialect's cluster side.
type clustered struct {
	n *cluster.Node
	b *cluster.Broker

	mu      sync.Mutex            // guards batches
	batches map[string]*joinBatch // rooms with joins waiting or in progress here
}

// kv is the party bucket (after the node started).
func (cl *clustered) kv() jetstream.KeyValue { return cl.n.KV(cluster.BucketParty) }

// UseCluster puts the dialect in cluster mode on node n. Call before the
// server starts.
func (d *Dialect) UseCluster(n *cluster.Node) {
	cl := &clustered{n: n, b: n.Broker("party", d.hub)}
	cl.b.OnMessage = d.onRemote
	n.Handle("party.to", d.onDirectTo)
	n.Handle("party.replaced", d.onReplaced)
	n.OnNodeDead(d.reap)
	d.cl, d.broker = cl, cl.b
}

// roomRec is a room in the registry (key room.<CODE>).
type roomRec struct {
	ID      string      `json:"id"`
	Max     int         `json:"max"`
	Created time.Time   `json:"created"`
	Members []recMember `json:"members"` // join order
}

type recMember struct {
	Client string `json:"c"`
	Member string `json:"m"` // cluster.Node.Member of the node holding it
	Token  string `json:"t"`
	Inst   string `json:"i"` // the connection instance
}

func roomKey(code string) string { return "room." + code }
func stateKey(id string) string  { return "state." + id }

func randomID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// errBusy answers a request when the cluster worker queue is full.
const errBusy = "server busy: try again"

// clusterSession is a session's cluster-mode state (loop only).
type clusterSession struct {
	gate pending.Gate
	op   *pending.Op
}

// hold keeps a message that arrived while an operation is in flight;
// true when held (or the connection was closed for holding too many).
func (s *session) hold(kind codec.Kind, payload []byte) bool {
	if !s.cs.gate.Busy() {
		return false
	}
	if !s.cs.gate.Hold(kind, payload) {
		s.c.Close(1008, "too many messages while a join is in progress")
	}
	return true
}

// begin starts an operation; the session's later messages wait.
func (s *session) begin() *pending.Op {
	s.cs.op = &pending.Op{}
	s.cs.gate.Close()
	return s.cs.op
}

// end finishes the operation on the loop and replays held messages.
func (s *session) end() {
	s.cs.op = nil
	s.cs.gate.Open(s.OnMessage)
}

// closeCluster runs from OnClose: an operation in flight is undone.
func (s *session) closeCluster() {
	if s.cs.op == nil {
		return
	}
	if undo := s.cs.op.Cancel(); undo != nil {
		if !s.d.cl.n.Go(undo) {
			go undo() // the pool is full or stopped: the removal must still happen
		}
	}
	s.cs.op = nil
}

// goWork runs fn on the worker pool; false (and an error reply) when busy.
func (s *session) goWork(fn func()) bool {
	if s.d.cl.n.Go(fn) {
		return true
	}
	s.fail(errBusy)
	return false
}

// joinResult is what a worker hands back to the loop.
type joinResult struct {
	err     string // an error reply, "" on success
	code    string
	rec     roomRec // after the join
	me      recMember
	old     *recMember     // the replaced entry
	state   *routing.Frame // retained state (a reference), or nil
	rev     uint64         // its revision
	release func()         // drops the pinned subscription
}

func (s *session) createCluster(id string, max int) {
	cl := s.d.cl
	op := s.begin()
	c := s.c
	me := recMember{Client: id, Member: cl.n.Member(), Token: newToken(), Inst: randomID()}
	if !s.goWork(func() {
		res := &joinResult{me: me}
		rec := roomRec{ID: randomID(), Max: max, Created: time.Now().UTC(), Members: []recMember{me}}
		body, _ := json.Marshal(rec)
		for i := 0; i < 64 && res.code == ""; i++ {
			code := s.d.newCode()
			ctx, cancel := cl.n.Ctx()
			_, err := cl.kv().Create(ctx, roomKey(code), body)
			cancel()
			switch {
			case err == nil:
				res.code, res.rec = code, rec
			case !cluster.Conflict(err):
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
				c.Do(func() { s.finishJoin(res, true) })
			}
			return
		}
		// Listen to the room before anyone can learn its code.
		cl.b.Ensure(res.code, func(release func()) {
			res.release = release
			undo := func() { s.d.removeMember(res.code, me, false); release() }
			if !op.Finish(undo) {
				cl.n.Go(undo)
				return
			}
			c.Do(func() { s.finishJoin(res, true) })
		})
	}) {
		s.end()
	}
}

func (s *session) joinCluster(id, code, token string, hasToken bool) {
	cl := s.d.cl
	req := &joinReq{s: s, op: s.begin(), token: token, hasToken: hasToken,
		me:  recMember{Client: id, Member: cl.n.Member(), Inst: randomID()},
		res: &joinResult{code: code}}
	// Listen to the room first: nothing published after the membership
	// update can be missed.
	cl.b.Ensure(code, func(release func()) {
		req.res.release = release
		s.d.queueJoin(req)
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

func (d *Dialect) queueJoin(req *joinReq) {
	cl, code := d.cl, req.res.code
	cl.mu.Lock()
	if cl.batches == nil {
		cl.batches = map[string]*joinBatch{}
	}
	b := cl.batches[code]
	if b == nil {
		b = &joinBatch{}
		cl.batches[code] = b
	}
	b.reqs = append(b.reqs, req)
	start := !b.running
	b.running = true
	cl.mu.Unlock()
	if start && !cl.n.Go(func() { d.runJoins(code) }) {
		cl.mu.Lock()
		reqs := b.reqs
		delete(cl.batches, code)
		cl.mu.Unlock()
		for _, r := range reqs {
			r.res.err = errBusy
			r.complete()
		}
	}
}

// runJoins applies the room's waiting joins until none are left. Worker.
func (d *Dialect) runJoins(code string) {
	cl := d.cl
	for {
		cl.mu.Lock()
		b := cl.batches[code]
		reqs := b.reqs
		b.reqs = nil
		if len(reqs) == 0 {
			delete(cl.batches, code)
			cl.mu.Unlock()
			return
		}
		cl.mu.Unlock()
		d.applyJoins(code, reqs)
		var state *routing.Frame
		var rev uint64
		for _, r := range reqs {
			if r.res.err == "" {
				if state == nil && rev == 0 {
					state, rev = d.loadState(r.res.rec.ID)
					rev = max(rev, 1)
				}
				if state != nil {
					state.Retain()
					r.res.state, r.res.rev = state, rev
				}
			}
			r.complete()
		}
		if state != nil {
			state.Release()
		}
	}
}

// applyJoins adds the joiners to the room with one revision-checked
// update (re-applied on conflict); each request gets its result.
func (d *Dialect) applyJoins(code string, reqs []*joinReq) {
	cl := d.cl
	for try := 0; ; try++ {
		ctx, cancel := cl.n.Ctx()
		e, err := cl.kv().Get(ctx, roomKey(code))
		cancel()
		var rec roomRec
		if err == nil && json.Unmarshal(e.Value(), &rec) != nil {
			err = errText("damaged registry entry")
		}
		if err != nil {
			msg := "cannot join: " + err.Error()
			if cluster.NotFound(err) {
				msg = "room not found: " + code
			}
			for _, r := range reqs {
				r.res.err = msg
			}
			return
		}
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
		ctx, cancel = cl.n.Ctx()
		_, err = cl.kv().Update(ctx, roomKey(code), body, e.Revision())
		cancel()
		if err == nil {
			for _, r := range reqs {
				if r.res.err == "" {
					r.res.rec = rec // every joiner of the batch sees the whole batch
				}
			}
			return
		}
		if !cluster.Conflict(err) || try >= 200 {
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
func (d *Dialect) applyJoin(rec *roomRec, r *joinReq) bool {
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
		r.res.err = "room full: " + r.res.code + " has " + itoa(rec.Max) + " clients"
		return false
	}
	if me.Token == "" {
		me.Token = newToken()
	}
	rec.Members = append(next, me)
	r.res.me = me
	return true
}

// complete hands the join's result back to its connection's loop, or
// undoes it when the connection closed meanwhile. Worker.
func (r *joinReq) complete() {
	res, s := r.res, r.s
	undo := res.release
	if res.err == "" {
		me := res.me
		undo = func() {
			if res.state != nil {
				res.state.Release()
			}
			s.d.removeMember(res.code, me, false)
			res.release()
		}
	}
	if !r.op.Finish(undo) {
		undo()
		return
	}
	s.c.Do(func() { s.finishJoin(res, false) })
}

// loadState reads the room's retained state. Worker.
func (d *Dialect) loadState(id string) (*routing.Frame, uint64) {
	ctx, cancel := d.cl.n.Ctx()
	defer cancel()
	e, err := d.cl.kv().Get(ctx, stateKey(id))
	if err != nil || len(e.Value()) == 0 {
		return nil, 0
	}
	return routing.NewRaw(e.Value()), e.Revision()
}

// finishJoin completes a create or join on the loop: the local room, the
// created/joined reply (and state), and the announcements.
func (s *session) finishJoin(res *joinResult, created bool) {
	defer s.end()
	if res.err != "" {
		if res.release != nil {
			res.release()
		}
		s.fail(res.err)
		return
	}
	defer res.release()
	cl := s.d.cl
	m := newMember(res.me.Client, s.c)
	pm := m.Data.(*member)
	pm.token, pm.inst = res.me.Token, res.me.Inst
	var r *routing.Room
	var old *routing.Member
	for {
		r = s.d.hub.GetOrCreate(res.code)
		if r.Ext() == nil {
			r.SetExt(&roomState{})
		}
		st := r.Ext().(*roomState)
		var err error
		old, err = r.Join(m, func(*routing.Member) error { return nil }, func(members []*routing.Member) {
			st.mu.Lock()
			st.id = res.rec.ID
			if st.roster == nil {
				st.roster = map[string]string{}
			}
			for _, x := range res.rec.Members {
				st.roster[x.Client] = x.Member
			}
			if res.state != nil && res.rev > st.rev {
				if st.state != nil {
					st.state.Release()
				}
				st.state, st.rev = res.state, res.rev
				res.state.Retain()
			}
			st.mu.Unlock()
			if created {
				s.sendCreated(r, m)
			} else {
				s.sendJoinedList(r, m, res.rec.Members)
			}
		})
		if err == routing.ErrRoomGone {
			continue // raced with the local room's deletion
		}
		break
	}
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
		return
	}
	if res.old != nil {
		// A replacement: nobody sees peer_left/peer_joined; the node of the
		// old connection closes it, every node updates its roster.
		node, _ := cluster.MemberNode(res.old.Member)
		if node != cl.n.ID() {
			cl.n.Direct(node, "party.replaced", nats.Header{hdrRoom: {res.code}, hdrClient: {res.me.Client}, hdrInst: {res.old.Inst}}, nil)
		}
		f := routing.NewTextFrom(nil)
		cl.b.PublishRemote(res.code, f, false, nats.Header{hdrEv: {"replace"}, hdrClient: {res.me.Client}, hdrMember: {res.me.Member}})
		f.Release()
		return
	}
	f := routing.NewText()
	f.AppendStr(`{"type":"peer_joined","clientId":`)
	f.Append(pm.quotedID...)
	f.Append('}')
	f.End()
	r.Broadcast(f, s.c, false)
	cl.b.PublishRemote(res.code, f, false, nats.Header{hdrEv: {"join"}, hdrClient: {res.me.Client}, hdrMember: {res.me.Member}})
	f.Release()
}

func (s *session) sendCreated(r *routing.Room, m *routing.Member) {
	f := routing.NewText()
	f.AppendStr(`{"type":"created","room":`)
	f.SetBuf(codec.AppendString(f.Buf(), r.Name))
	f.AppendStr(`,"token":`)
	f.SetBuf(codec.AppendString(f.Buf(), m.Data.(*member).token))
	f.Append('}')
	s.c.Send(f.End(), false)
	f.Release()
}

// sendJoinedList queues "joined" with the cluster's member list (and the
// retained state); it runs under the local room's lock.
func (s *session) sendJoinedList(r *routing.Room, m *routing.Member, members []recMember) {
	s.sendJoinedWith(r, m, func(f *routing.Frame) {
		for i, x := range members {
			if i > 0 {
				f.Append(',')
			}
			f.SetBuf(codec.AppendString(f.Buf(), x.Client))
		}
		f.Append(']')
	}, nil)
}

// leaveCluster leaves the room: local fan-out stops at once; the registry
// update and peer_left (to every node) follow on a worker, so that
// peer_left is only sent for a member that really left (not one replaced
// meanwhile).
func (s *session) leaveCluster(r *routing.Room, m *routing.Member) {
	removed, remaining := r.Leave(m)
	if !removed {
		return
	}
	if remaining == 0 {
		dropState(r)
	}
	pm := m.Data.(*member)
	me := recMember{Client: m.ID, Member: s.d.cl.n.Member(), Inst: pm.inst}
	work := func() { s.d.removeMember(r.Name, me, true) }
	if !s.d.cl.n.Go(work) {
		go work()
	}
}

// removeMember removes the entry of me (same connection instance) from
// the room, deletes an emptied room, and with announce publishes peer_left
// to every node. Worker.
func (d *Dialect) removeMember(code string, me recMember, announce bool) {
	removed := d.updateRoom(code, func(rec *roomRec) []recMember {
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
}

// announceLeft publishes peer_left for x to the room on every node.
func (d *Dialect) announceLeft(code string, x recMember) {
	f := routing.NewText()
	f.AppendStr(`{"type":"peer_left","clientId":`)
	f.SetBuf(codec.AppendString(f.Buf(), x.Client))
	f.Append('}')
	f.End()
	if r := d.hub.Get(code); r != nil {
		if st, ok := r.Ext().(*roomState); ok {
			st.mu.Lock()
			if st.roster[x.Client] == x.Member {
				delete(st.roster, x.Client)
			}
			st.mu.Unlock()
		}
		r.Broadcast(f, nil, false)
	}
	d.cl.b.PublishRemote(code, f, false, nats.Header{hdrEv: {"leave"}, hdrClient: {x.Client}, hdrMember: {x.Member}})
	f.Release()
}

// updateRoom applies fn to the room's record with a revision-checked
// update (retried) and returns what fn removed. An emptied room is deleted
// with its state. Worker.
func (d *Dialect) updateRoom(code string, fn func(rec *roomRec) []recMember) []recMember {
	kv := d.cl.kv()
	for try := 0; try < 200; try++ {
		ctx, cancel := d.cl.n.Ctx()
		e, err := kv.Get(ctx, roomKey(code))
		if err != nil {
			cancel()
			return nil
		}
		var rec roomRec
		if json.Unmarshal(e.Value(), &rec) != nil {
			cancel()
			return nil
		}
		removed := fn(&rec)
		if len(removed) == 0 {
			cancel()
			return nil
		}
		if len(rec.Members) == 0 {
			err = kv.Delete(ctx, roomKey(code), jetstream.LastRevision(e.Revision()))
			if err == nil {
				_ = kv.Purge(ctx, stateKey(rec.ID))
			}
		} else {
			body, _ := json.Marshal(rec)
			_, err = kv.Update(ctx, roomKey(code), body, e.Revision())
		}
		cancel()
		if err == nil {
			return removed
		}
		if !cluster.Conflict(err) {
			return nil
		}
		backoff(try)
	}
	return nil
}

// setStateCluster stores the state frame f (the caller's reference passes
// to this function) in the registry, then publishes it with its revision.
func (s *session) setStateCluster(r *routing.Room, f *routing.Frame) {
	st, _ := r.Ext().(*roomState)
	if st == nil {
		f.Release()
		return
	}
	st.mu.Lock()
	id := st.id
	st.mu.Unlock()
	d := s.d
	work := func() {
		defer f.Release()
		ctx, cancel := d.cl.n.Ctx()
		rev, err := d.cl.kv().Put(ctx, stateKey(id), f.Bytes())
		cancel()
		if err != nil {
			return
		}
		d.applyState(r, f, rev)
		d.cl.b.PublishRemote(r.Name, f, false, nats.Header{hdrEv: {"state"}, hdrRev: {strconv.FormatUint(rev, 10)}})
	}
	if !d.cl.n.Go(work) {
		f.Release()
		s.fail(errBusy)
	}
}

// applyState keeps f as the room's state if rev is newer than what the
// node has, and then sends it to the local members. f stays the caller's.
func (d *Dialect) applyState(r *routing.Room, f *routing.Frame, rev uint64) {
	st, _ := r.Ext().(*roomState)
	if st == nil {
		return
	}
	st.mu.Lock()
	if rev <= st.rev {
		st.mu.Unlock()
		return // an older update: a newer one was already sent here
	}
	old := st.state
	f.Retain()
	st.state, st.rev = f, rev
	st.mu.Unlock()
	if old != nil {
		old.Release()
	}
	r.Broadcast(f, nil, false)
}

// onRemote sees every party message from another node (dispatcher
// goroutine): it keeps rosters and state, and lets the broker deliver the
// rest.
func (d *Dialect) onRemote(code string, m *cluster.Msg) bool {
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
		return ev == "replace" || ev == "state"
	}
	client, mem := m.Header.Get(hdrClient), m.Header.Get(hdrMember)
	switch ev {
	case "join", "replace":
		st.mu.Lock()
		if st.roster == nil {
			st.roster = map[string]string{}
		}
		st.roster[client] = mem
		st.mu.Unlock()
		return ev == "replace"
	case "leave":
		st.mu.Lock()
		if st.roster[client] == mem {
			delete(st.roster, client)
		}
		st.mu.Unlock()
		return false
	case "state":
		rev, _ := strconv.ParseUint(m.Header.Get(hdrRev), 10, 64)
		f := routing.NewRaw(m.Data)
		d.applyState(r, f, rev)
		f.Release()
		return true
	}
	return false
}

// remoteTarget finds a member of the room on another node: its node id.
func (d *Dialect) remoteTarget(r *routing.Room, to string) (string, bool) {
	st, _ := r.Ext().(*roomState)
	if st == nil {
		return "", false
	}
	st.mu.Lock()
	mem, ok := st.roster[to]
	st.mu.Unlock()
	if !ok {
		return "", false
	}
	node, _ := cluster.MemberNode(mem)
	return node, node != d.cl.n.ID()
}

// sendRemote sends f to the member to of room code on node.
func (d *Dialect) sendRemote(node, code, to string, f *routing.Frame) {
	d.cl.n.Direct(node, "party.to", nats.Header{hdrRoom: {code}, hdrClient: {to}}, f)
}

// onDirectTo delivers a targeted send from another node.
func (d *Dialect) onDirectTo(m *cluster.Msg) {
	r := d.hub.Get(m.Header.Get(hdrRoom))
	if r == nil {
		return
	}
	if x := r.Lookup(m.Header.Get(hdrClient)); x != nil {
		f := routing.NewRaw(m.Data)
		x.Conn.Send(f, false)
		f.Release()
	}
}

// onReplaced closes a local connection whose clientId joined again on
// another node.
func (d *Dialect) onReplaced(m *cluster.Msg) {
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
		oc.Close(4000, "replaced")
	}
}

// reap removes a dead node's members from every room, with peer_left.
func (d *Dialect) reap(node, keepInc string) {
	n := d.cl.n
	ctx, cancel := n.Ctx()
	kl, err := d.cl.kv().ListKeysFiltered(ctx, "room.*")
	var codes []string
	if err == nil {
		for k := range kl.Keys() {
			codes = append(codes, strings.TrimPrefix(k, "room."))
		}
	}
	cancel()
	for _, code := range codes {
		removed := d.updateRoom(code, func(rec *roomRec) []recMember {
			var gone []recMember
			kept := rec.Members[:0:0]
			for _, x := range rec.Members {
				if cluster.Stale(x.Member, node, keepInc) {
					gone = append(gone, x)
				} else {
					kept = append(kept, x)
				}
			}
			rec.Members = kept
			return gone
		})
		for _, x := range removed {
			d.announceLeft(code, x)
		}
	}
}

// roomInfo reads a room from the registry for GET /api/rooms/{code}.
// Blocks (an HTTP goroutine).
func (d *Dialect) roomInfo(code string) (roomRec, bool) {
	ctx, cancel := d.cl.n.Ctx()
	defer cancel()
	e, err := d.cl.kv().Get(ctx, roomKey(code))
	if err != nil {
		return roomRec{}, false
	}
	var rec roomRec
	return rec, json.Unmarshal(e.Value(), &rec) == nil
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

// sendToRemote relays a targeted send to a member on another node, or
// answers "unknown target".
func (s *session) sendToRemote(r *routing.Room, to string, data []byte) {
	node, ok := s.d.remoteTarget(r, to)
	if !ok {
		s.fail("unknown target: " + to)
		return
	}
	f := routing.NewText()
	f.AppendStr(`{"type":"message","from":`)
	f.Append(s.me.Data.(*member).quotedID...)
	if len(data) > 0 {
		f.AppendStr(`,"data":`)
		f.Append(data...)
	}
	f.Append('}')
	s.d.sendRemote(node, r.Name, to, f.End())
	f.Release()
}
