package party

// Offsets, history and recovery in cluster mode (docs/cluster.md, "Party
// recovery across nodes").
//
// A room's "message" and "state" frames go through the room's log, a
// backplane.RoomLog (over NATS, a subject of the PL_PARTY JetStream
// stream): the sender's node appends the entry; every node with members in
// the room follows the log (a feed) and, in log order, stamps the entry's
// sequence as seq, fans the frame out to its own members and files it in
// the local room's history, under the room's lock as on a single node. So
// every node delivers a room's frames in one order, and a node that starts
// following a room rebuilds its history from what the stream keeps: a
// member may come back through any node and recover.
//
// A room's log starts with an "open" entry appended at create: created and
// joined carry the room's latest seq, which is therefore always an entry
// of the room, and a follower that starts at the oldest entry the stream
// kept knows exactly what is gone before it.
//
// Feeds: one per room with local members (or a join in flight), keyed by
// code in shared.feeds; it owns the local routing room (created
// sequenced with the registry's room id as epoch) and stops when that room
// is gone (Hub.OnGone). Follow and the waits run on cluster workers; the
// feed's callback runs on its follower's goroutine and only queues
// frames.

import (
	"encoding/binary"
	"errors"
	"time"

	"partyline/backplane"
	"partyline/codec"
	"partyline/routing"
)

// Log entry kinds (backplane.LogEntry.Ev); "" is a message.
const (
	evOpen  = "open"
	evState = "state"
)

// feedWait bounds how long a join waits for a feed to catch up.
const feedWait = 5 * time.Second

// feed is this node's follower of one room's log.
type feed struct {
	code, id string
	room     *routing.Room
	fl       backplane.Follower // nil until Follow returned
	ready    chan struct{}      // closed once Follow returned (err set on failure)
	err      error
	pins     int // joins in flight; guarded by shared.mu
}

// ensureFeed returns the room's feed, started if needed, once it has
// delivered every entry the log held when the join asked, with a pin the
// caller gives back with unpin. Worker.
func (d *shared) ensureFeed(code string, rec *roomRec) (*feed, error) {
	var fd *feed
	var last uint64 // the log's latest entry when Follow started, for a new feed
	started := false
	for try := 0; ; try++ {
		d.mu.Lock()
		fd = d.feeds[code]
		if fd != nil && fd.id != rec.ID {
			d.mu.Unlock()
			return nil, errText(errRoomNotFound) // a newer incarnation; the old one is on its way out here
		}
		if fd != nil {
			fd.pins++
			d.mu.Unlock()
			<-fd.ready
			if fd.err != nil {
				d.unpin(fd)
				return nil, fd.err
			}
			break
		}
		r := d.hub.CreateSequenced(code, 0, rec.Created, rec.ID, 0, d.historyLimits(), &d.held)
		if r == nil { // the local room of an earlier feed is being removed
			d.mu.Unlock()
			if try > 100 {
				return nil, errText("room busy: try again")
			}
			time.Sleep(time.Millisecond)
			continue
		}
		st := &roomState{id: rec.ID, roster: map[string]string{}}
		if rec.V2 {
			st.slots = map[int]string{}
		}
		r.SetExt(st)
		fd = &feed{code: code, id: rec.ID, room: r, ready: make(chan struct{}), pins: 1}
		d.feeds[code] = fd
		d.mu.Unlock()
		fl, at, err := d.rlog.Follow(rec.ID, func(e backplane.LogEntry) { d.deliver(fd, e) })
		fd.fl, fd.err, last, started = fl, err, at, true
		close(fd.ready)
		if err != nil {
			fd.err = errText("cannot follow the room: " + err.Error())
			d.unpin(fd)
			return nil, fd.err
		}
		break
	}
	var err error
	if !started { // a running feed: wait for what the log holds now
		last, err = d.rlog.Last(rec.ID)
	}
	if err == nil && !fd.fl.Wait(last, feedWait) {
		err = errText("room history did not catch up in time")
	}
	if err != nil {
		d.unpin(fd)
		return nil, errText("cannot join: " + err.Error())
	}
	return fd, nil
}

// unpin gives back ensureFeed's pin; a feed whose room never got a local
// member is stopped. Any goroutine but the feed's callback.
func (d *shared) unpin(fd *feed) {
	if fd == nil {
		return
	}
	d.mu.Lock()
	fd.pins--
	idle := fd.pins == 0
	d.mu.Unlock()
	if idle && fd.room.Len() == 0 && fd.room.Discard() {
		d.stopFeed(fd) // Discard's OnGone already took it out of feeds if it was there
	}
}

// feedGone runs (Hub.OnGone, under the room's lock) when a local room
// loses its last member: its feed stops.
func (d *shared) feedGone(r *routing.Room) {
	d.mu.Lock()
	fd := d.feeds[r.Name]
	if fd == nil || fd.room != r {
		d.mu.Unlock()
		return
	}
	delete(d.feeds, r.Name)
	d.mu.Unlock()
	dropState(r)
	go d.stopFeed(fd) // Stop may wait for the callback, which waits for this lock
}

func (d *shared) stopFeed(fd *feed) {
	<-fd.ready
	if fd.fl != nil {
		fd.fl.Stop()
	}
}

// deliver runs for each entry of a followed room's log, in order: it
// stamps the entry's seq, fans the frame out to this node's members and
// files it in the room's history. The follower's goroutine.
func (d *shared) deliver(fd *feed, e backplane.LogEntry) {
	r := fd.room
	switch e.Ev {
	case evOpen:
		if r.BeginAt(e.Seq) {
			r.CommitAt(nil, e.Seq, "", "", e.At)
			r.EndSeq()
		}
	case evState:
		f := d.logStateFrame(e.Data, e.Seq)
		if r.BeginAt(e.Seq) {
			if st, ok := r.Ext().(*roomState); ok {
				d.keepState(st, f, e.Seq)
			}
			var except routing.Sender
			if d.prof.slots { // 2.x does not echo the host's state
				if m := r.LookupLockedID(e.From); m != nil {
					except = m.Conn
				}
			}
			r.Broadcast(f, except, false)
			r.CommitAt(f, e.Seq, "", "", e.At)
			r.EndSeq()
		}
		f.Release()
	default: // a message
		f := routing.NewText()
		f.AppendStr(`{"type":"message","from":`)
		if d.prof.slots && e.Rev != 0 { // the sender's slot index, carried as Rev-1 ("server" has none)
			f.SetBuf(codec.AppendInt(f.Buf(), int64(e.Rev)-1))
		} else {
			f.SetBuf(codec.AppendString(f.Buf(), e.From))
		}
		if len(e.Data) > 0 {
			f.AppendStr(`,"data":`)
			f.Append(e.Data...)
		}
		if d.prof.slots {
			f.Append('}') // 2.x frames carry no seq
			f.End()
		} else {
			appendSeq(f, e.Seq)
		}
		if r.BeginAt(e.Seq) {
			if e.To != "" {
				if t := r.LookupLockedID(e.To); t != nil {
					r.SendTo(t, f, false)
				}
			} else {
				var except routing.Sender
				if m := r.LookupLockedID(e.From); m != nil {
					except = m.Conn
				}
				r.Broadcast(f, except, false)
			}
			r.CommitAt(f, e.Seq, e.From, e.To, e.At)
			r.EndSeq()
		}
		f.Release()
	}
}

// stateFrame is the "state" frame of state (raw JSON) at seq.
func stateFrame(state []byte, seq uint64) *routing.Frame {
	f := routing.NewText()
	f.AppendStr(`{"type":"state","state":`)
	f.Append(state...)
	appendSeq(f, seq)
	return f
}

// logStateFrame is the dialect's "state" frame of a log entry: party's
// with its seq, party-v2's as 2.x writes it.
func (d *shared) logStateFrame(state []byte, seq uint64) *routing.Frame {
	if !d.prof.slots {
		return stateFrame(state, seq)
	}
	f := routing.NewText()
	f.AppendStr(`{"type":"state","data":`)
	f.Append(state...)
	f.Append('}')
	return f.End()
}

// appendSeq closes a frame with `,"seq":N}`.
func appendSeq(f *routing.Frame, seq uint64) {
	f.AppendStr(`,"seq":`)
	f.SetBuf(codec.AppendInt(f.Buf(), int64(seq)))
	f.Append('}')
	f.End()
}

// keepState makes f (at seq) the room's retained state if it is newer
// than what the room has. f stays the caller's. The state is in the log
// already: it is kept (and counted in --max-state-bytes-total) even past
// the budget, which the setter's node checked before appending it.
func (d *shared) keepState(st *roomState, f *routing.Frame, seq uint64) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if seq <= st.rev {
		return
	}
	if st.state != nil {
		st.state.Release()
	}
	f.Retain()
	st.state, st.rev = f, seq
	d.states.force(st, int64(f.Len()))
}

// send appends the member's message to the room's log; its node's
// feed (and every other node's) delivers it. Loop.
func (d *shared) send(s *session, r *routing.Room, req *request) {
	to := ""
	if len(req.To) > 0 && string(req.To) != "null" {
		var ok bool
		if to, ok = codec.Str(req.To); !ok || !d.inRoom(r, to) {
			s.fail(errTargetNotFound)
			return
		}
	}
	st, _ := r.Ext().(*roomState)
	if st == nil {
		s.fail("not in a room")
		return
	}
	data := append([]byte(nil), req.Data...) // the request's buffer is the loop's
	if !d.rlog.Append(st.id, backplane.LogEntry{From: s.me.ID, To: to, Data: data}) {
		s.fail(errBusy)
	}
}

// inRoom reports whether clientId is a member of r on any node.
func (d *shared) inRoom(r *routing.Room, clientID string) bool {
	if r.Lookup(clientID) != nil {
		return true
	}
	st, _ := r.Ext().(*roomState)
	if st == nil {
		return false
	}
	st.mu.Lock()
	_, ok := st.roster[clientID]
	st.mu.Unlock()
	return ok
}

// onLost tells the sender of an entry that never reached the log.
// Publisher or NATS goroutine.
func (d *shared) onLost(id string, e backplane.LogEntry, reason string) {
	d.log.Warn("party: a room's frame was not delivered", "room_id", id, "reason", reason)
	if e.From == "" {
		return
	}
	d.mu.Lock()
	var r *routing.Room
	for _, fd := range d.feeds {
		if fd.id == id {
			r = fd.room
		}
	}
	d.mu.Unlock()
	if r == nil {
		return
	}
	if m := r.Lookup(e.From); m != nil {
		f := routing.NewText()
		f.AppendStr(`{"type":"error","message":"message not delivered: the cluster is unavailable"}`)
		m.Conn.Send(f.End(), false)
		f.Release()
	}
}

// setState and setStateV2 append the state to the room's log (setStateLog).
func (d *shared) setState(s *session, r *routing.Room, _ *roomState, state []byte) {
	d.setStateLog(s, r, state)
}

func (d *shared) setStateV2(s *session, r *routing.Room, data []byte) { d.setStateLog(s, r, data) }

// setStateLog appends the state to the room's log, after the
// member's earlier messages (one publisher keeps a node's order); the
// feeds deliver it, and once the stream has it the registry keeps it for
// joiners after the log dropped it (storeState). Loop.
func (d *shared) setStateLog(s *session, r *routing.Room, state []byte) {
	st, _ := r.Ext().(*roomState)
	if st == nil {
		return
	}
	id := st.id
	data := append([]byte(nil), state...)
	if !d.rlog.AppendThen(id, backplane.LogEntry{Ev: evState, From: s.me.ID, Data: data}, func(seq uint64) {
		d.storeState(id, d.logStateFrame(data, seq), seq)
	}) {
		s.fail(errBusy)
	}
}

// storeState writes the state frame f (at seq; the caller's reference
// passes to it) to the registry unless a newer one is there. It queues
// the write on the node's clean-up queue (retried while NATS is
// unreachable).
func (d *shared) storeState(id string, f *routing.Frame, seq uint64) {
	val := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(f.Bytes())), seq)
	val = append(val, f.Bytes()...)
	f.Release()
	d.n.Cleanup(func() error {
		kv := d.reg
		for try := 0; try < 50; try++ {
			ctx, cancel := d.n.Ctx()
			e, err := kv.Get(ctx, stateKey(id))
			switch {
			case errors.Is(err, backplane.ErrNotFound):
				_, err = kv.Create(ctx, stateKey(id), val)
			case err == nil && stateSeq(e.Value) >= seq:
				cancel()
				return nil // a newer state is there
			case err == nil:
				_, err = kv.Update(ctx, stateKey(id), val, e.Revision)
			}
			cancel()
			if err == nil || !errors.Is(err, backplane.ErrConflict) {
				return err
			}
			backoff(try)
		}
		return errConflicts
	})
}

// stateSeq is the seq of a state kept in the registry (0: none).
func stateSeq(v []byte) uint64 {
	if len(v) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// loadState reads the room's retained state from the registry: the frame
// and its seq. Worker.
func (d *shared) loadState(id string) (*routing.Frame, uint64) {
	ctx, cancel := d.n.Ctx()
	defer cancel()
	e, err := d.reg.Get(ctx, stateKey(id))
	if err != nil || len(e.Value) <= 8 {
		return nil, 0
	}
	return routing.NewRaw(e.Value[8:]), stateSeq(e.Value)
}
