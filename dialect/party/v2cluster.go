package party

// party-v2 in cluster mode: party's cluster machinery (registry records
// created and updated with compare-and-set, batched joins, room logs,
// announcements through the broker, reaping of dead nodes) with the 2.x
// rules held as data in the record (key room2.<CODE>):
//
//   - the record carries V2, the next new slot (Slots), maxClients as sent
//     (MaxF), the controller URL and the host grace's deadline (Grace);
//   - each entry carries its slot Index; an entry whose socket closed stays
//     with Off set, so its clientId gets its slot back on any node; only
//     entries without Off count toward maxClients and are peers;
//   - a room with no connected entry is deleted (updateRoom, roomRec.empty);
//     so is a room whose host stayed off past its grace, and one its host
//     closed: then every node closes its members with 4001 "room closed"
//     (the "close" event). The node that marked the host off keeps the
//     grace timer; a node that reaps a dead one takes its timers over;
//   - messages and states go through the room's log as party's do; an
//     entry's From is the sender's clientId (every node finds its own
//     member to skip by it) and Rev the sender's slot index + 1, so each
//     node builds the 2.x frame without a lookup. States are not echoed
//     to the host, as in 2.x.
//
// Every node keeps a room's connected slots (roomState.slots) from the
// record at join and the announcements after it: a send "to" an index is
// checked against it, as a party send is against the roster.

import (
	"time"

	"partyline/backplane"
	"partyline/routing"
)

// applyJoinV2 adds r's joiner to rec: a clientId with an entry keeps its
// slot (a replacement if that entry is connected, else a reclaim, which
// needs room below maxClients), a new one takes the next slot. False (and
// r.res.err) when the room is full.
func applyJoinV2(rec *roomRec, r *joinReq) bool {
	me := r.me
	connected, at := 0, -1
	for i, x := range rec.Members {
		if !x.Off {
			connected++
		}
		if x.Client == me.Client {
			at = i
		}
	}
	if at >= 0 {
		old := rec.Members[at]
		if old.Off && float64(connected) >= rec.MaxF {
			r.res.err = errRoomFull
			return false
		}
		me.Index = old.Index
		if me.Index == 0 {
			rec.Grace = 0 // the host is back
		}
		rec.Members[at] = me
		r.res.old, r.res.me = &old, me
		return true
	}
	if float64(connected) >= rec.MaxF {
		r.res.err = errRoomFull
		return false
	}
	me.Index = rec.Slots
	rec.Slots++
	rec.Members = append(rec.Members, me)
	r.res.me = me
	return true
}

// slotMetas lists the connected slots' join-hook metadata.
func slotMetas(rec *roomRec) []slotMeta {
	var out []slotMeta
	for _, x := range rec.Members {
		if !x.Off && x.Meta != nil {
			out = append(out, slotMeta{x.Index, x.Meta})
		}
	}
	return out
}

// peersOf lists the connected slots of rec but clientId's.
func peersOf(rec *roomRec, clientID string) []int {
	var peers []int
	for _, x := range rec.Members {
		if !x.Off && x.Client != clientID {
			peers = append(peers, x.Index)
		}
	}
	return peers
}

// sendV2 appends the member's message to the room's log; "to" is
// a connected slot on any node. Loop.
func (d *shared) sendV2(s *session, r *routing.Room, req *request) {
	st, _ := r.Ext().(*roomState)
	if st == nil {
		s.fail(errNotInRoom)
		return
	}
	to := ""
	if len(req.To) > 0 {
		if idx, ok := slotIndex(req.To); ok {
			st.mu.Lock()
			to = st.slots[idx]
			st.mu.Unlock()
		}
		if to == "" {
			s.fail(d.prof.targetNotFound)
			return
		}
	}
	data := append([]byte(nil), req.Data...) // the request's buffer is the loop's
	e := backplane.LogEntry{From: s.me.ID, To: to, Rev: uint64(s.me.Data.(*member).index) + 1, Data: data}
	if !d.rlog.Append(st.id, e) {
		s.fail(errBusy)
	}
}

// off ends a party-v2 member's connection in cluster mode: the
// local membership ends at once, the registry marks its slot off (with
// peer_left to the room) on a worker. Loop.
func (d *shared) off(s *session, r *routing.Room, m *routing.Member) {
	r.Leave(m)
	me := recMember{Client: m.ID, Inst: m.Data.(*member).inst}
	code := r.Name
	d.n.Cleanup(func() error { return d.markOff(code, me, true) })
}

// markOff marks the entry of me (same connection instance) off: with
// announce peer_left goes to the room; the host going off starts its
// grace here; a room left with nobody connected is deleted. An error
// means the registry could not be reached (it is idempotent: run it
// again). Worker.
func (d *shared) markOff(code string, me recMember, announce bool) error {
	var grace int64
	off, err := d.updateRoom(code, func(rec *roomRec) []recMember {
		grace = 0
		for i, x := range rec.Members {
			if x.Client != me.Client || x.Inst != me.Inst || x.Off {
				continue
			}
			rec.Members[i].Off, rec.Members[i].Member = true, d.n.Member()
			if x.Index == 0 {
				rec.Grace = d.graceDeadline()
				grace = rec.Grace
			}
			if rec.empty() {
				grace = 0 // the room ends here
			}
			return []recMember{rec.Members[i]}
		}
		return nil
	})
	if len(off) == 0 {
		return err
	}
	if announce {
		d.announceLeft(code, off[0])
	}
	if grace != 0 {
		d.hostGrace(code, grace)
	}
	return nil
}

// graceDeadline is the host-grace deadline (unix ms) of a host that drops now.
func (d *shared) graceDeadline() int64 { return time.Now().Add(d.cfg.HostGrace).UnixMilli() }

// hostGrace ends the room when deadline passes unless its host came back
// (or left again: then a later deadline is in the record).
func (d *shared) hostGrace(code string, deadline int64) {
	time.AfterFunc(max(time.Until(time.UnixMilli(deadline)), 0), func() {
		d.n.Cleanup(func() error {
			_, _, err := d.endRoom(code, func(rec *roomRec) bool {
				if rec.Grace != deadline {
					return false
				}
				for _, x := range rec.Members {
					if x.Index == 0 && !x.Off {
						return false
					}
				}
				return true
			}, CloseRoomEnded)
			return err
		})
	})
}

// closeRoom is close_room in cluster mode: the registry entry goes
// and every node closes its members. Loop.
func (d *shared) closeRoom(s *session, r *routing.Room) {
	st, _ := r.Ext().(*roomState)
	if st == nil {
		return
	}
	code, id := r.Name, st.id
	d.n.Cleanup(func() error {
		_, _, err := d.endRoom(code, func(rec *roomRec) bool { return rec.ID == id }, CloseRoomEnded)
		return err
	})
}

// endRoom deletes the room's record if cond holds for it, then closes the
// room's members on every node with closeCode and "room closed" (4001:
// close_room and the host grace; 4004: the rooms API). It returns how
// many members the record had, whether it deleted it, and an error when
// the registry could not be reached. Blocks.
func (d *shared) endRoom(code string, cond func(rec *roomRec) bool, closeCode uint16) (int, bool, error) {
	var id string
	n := 0
	gone, err := d.updateRoom(code, func(rec *roomRec) []recMember {
		if !cond(rec) {
			return nil
		}
		id, n = rec.ID, rec.size()
		all := rec.Members
		rec.Members = nil
		return all
	})
	if len(gone) == 0 {
		return 0, false, err
	}
	d.closeLocal(code, id, closeCode)
	f := routing.NewTextFrom(nil)
	d.b.PublishRemote(code, f, false, backplane.Header{hdrEv: {"close"}, hdrRoomID: {id}, hdrCode: {itoa(int(closeCode))}})
	f.Release()
	return n, true, nil
}

// closeLocal closes this node's members of the room incarnation id with
// closeCode and "room closed", and ends the local room. Any goroutine.
func (d *shared) closeLocal(code, id string, closeCode uint16) {
	if r := d.hub.Get(code); r != nil {
		if st, ok := r.Ext().(*roomState); ok && st.id == id {
			d.teardown(r, nil, closeCode)
		}
	}
}

// reapV2 marks a dead node's connected entries of the room off (peer_left)
// and takes over the host's grace timer if that node kept it; a room left
// with nobody connected is deleted.
func (d *shared) reapV2(code string, g backplane.Gone) error {
	var off []recMember
	var grace int64
	if _, err := d.updateRoom(code, func(rec *roomRec) []recMember {
		off, grace = nil, 0
		var changed []recMember
		for i, x := range rec.Members {
			if !g.Holds(x.Member) {
				continue
			}
			rec.Members[i].Member = d.n.Member()
			if !x.Off {
				rec.Members[i].Off = true
				off = append(off, rec.Members[i])
				if x.Index == 0 {
					rec.Grace = d.graceDeadline()
				}
			}
			if x.Index == 0 {
				grace = rec.Grace
			}
			changed = append(changed, rec.Members[i])
		}
		if rec.empty() {
			grace = 0
		}
		return changed
	}); err != nil {
		return err // nothing changed: reap runs again
	}
	for _, x := range off {
		d.announceLeft(code, x)
	}
	if grace != 0 {
		d.hostGrace(code, grace)
	}
	return nil
}
