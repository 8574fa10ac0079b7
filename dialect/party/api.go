package party

import (
	"container/heap"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"time"

	"partyline/dialect"
	"partyline/routing"
)

// The rooms API (dialect.RoomAPI, docs/api.md) of party and party-v2: each
// method asks the roomStore (its api* method). Here the local store's:
// they run on net/http goroutines and act on a room as its sessions
// do: membership changes under the room's lock (Join, LeaveThen, CloseIf),
// sequenced publishes between BeginSeq and EndSeq, frames queued and
// connections closed through their Sender/Conn (any goroutine, never
// blocking). No method waits for an event loop.

// ServerID is the reserved clientId of messages sent through the API: a
// party client may not use it.
const ServerID = "server"

func notFound(code string) error {
	return dialect.APIErr(http.StatusNotFound, "room not found: "+code)
}

// apiRoom finds a live room by its code for the API.
func (d *Dialect) apiRoom(code string) (*routing.Room, *roomState, error) {
	if !d.prof.slots {
		code = strings.ToUpper(code) // party codes are case-insensitive
	}
	r := d.hub.Get(code)
	st, ok := roomStateOf(r)
	if !ok {
		return nil, nil, notFound(code)
	}
	return r, st, nil
}

// summary describes r; members is a snapshot of its membership.
func (d *Dialect) summary(r *routing.Room, st *roomState, members []*routing.Member) dialect.RoomSummary {
	s := dialect.RoomSummary{Code: r.Name, Dialect: d.prof.name, Created: r.Created.UTC()}
	if st.slot != nil {
		s.Members, s.MaxClients = connected(members), st.slot.max
	} else {
		s.Members, s.MaxClients = len(members), float64(r.Max)
	}
	st.mu.Lock()
	s.Public = st.public
	if st.meta != nil {
		s.Metadata = json.RawMessage(st.meta)
	}
	st.mu.Unlock()
	return s
}

// roomHeap is a max-heap of rooms by code: ListRooms keeps the limit+1
// smallest codes after the cursor in it, O(rooms × log limit) a page.
type roomHeap []*routing.Room

func (h roomHeap) Len() int           { return len(h) }
func (h roomHeap) Less(i, j int) bool { return h[i].Name > h[j].Name }
func (h roomHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *roomHeap) Push(x any)        { *h = append(*h, x.(*routing.Room)) }
func (h *roomHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// ListRooms implements dialect.RoomAPI. A room that exists for a whole
// walk of the pages is listed exactly once.
func (d *Dialect) ListRooms(f dialect.RoomFilter, after string, limit int) ([]dialect.RoomSummary, bool, error) {
	if !d.prof.slots {
		f.Prefix = strings.ToUpper(f.Prefix) // party codes are case-insensitive
	}
	return d.rooms.apiList(f, after, limit)
}

// apiList lists this node's rooms (ListRooms).
func (d local) apiList(f dialect.RoomFilter, after string, limit int) ([]dialect.RoomSummary, bool, error) {
	h := make(roomHeap, 0, min(limit+1, 1024))
	d.hub.Range(func(r *routing.Room) bool {
		if r.Name <= after || (len(h) > limit && r.Name >= h[0].Name) || !strings.HasPrefix(r.Name, f.Prefix) {
			return true
		}
		st, ok := roomStateOf(r)
		if !ok || !d.passes(r, st, f) {
			return true
		}
		heap.Push(&h, r)
		if len(h) > limit+1 {
			heap.Pop(&h)
		}
		return true
	})
	slices.SortFunc(h, func(a, b *routing.Room) int { return strings.Compare(a.Name, b.Name) })
	more := len(h) > limit
	if more {
		h = h[:limit]
	}
	out := make([]dialect.RoomSummary, 0, len(h))
	for _, r := range h {
		st, _ := roomStateOf(r)
		out = append(out, d.summary(r, st, r.Members()))
	}
	return out, more, nil
}

func (d *Dialect) passes(r *routing.Room, st *roomState, f dialect.RoomFilter) bool {
	if f.PublicOnly {
		st.mu.Lock()
		pub := st.public
		st.mu.Unlock()
		if !pub {
			return false
		}
	}
	if f.HasSpace {
		members := r.Members()
		if st.slot != nil {
			return float64(connected(members)) < st.slot.max
		}
		return r.Max <= 0 || len(members) < r.Max
	}
	return true
}

// CreateRoom implements dialect.RoomAPI: an empty room, discarded after
// Config.EmptyRoomTTL unless someone joins it first.
func (d *Dialect) CreateRoom(spec dialect.RoomSpec) (dialect.RoomSummary, error) {
	return d.rooms.apiCreate(spec)
}

// apiCreate makes an empty room on this node (CreateRoom).
func (d local) apiCreate(spec dialect.RoomSpec) (dialect.RoomSummary, error) {
	if d.draining.Load() {
		return dialect.RoomSummary{}, dialect.APIErr(http.StatusServiceUnavailable, "server draining")
	}
	max := spec.MaxClients
	if max == 0 {
		max = d.cfg.MaxClients
	}
	if max < 1 || max > d.cfg.MaxClients {
		return dialect.RoomSummary{}, dialect.APIErr(http.StatusUnprocessableEntity, "maxClients must be an integer from 1 to "+itoa(d.cfg.MaxClients))
	}
	if len(spec.Metadata) > dialect.MaxMetadata {
		return dialect.RoomSummary{}, dialect.APIErr(http.StatusRequestEntityTooLarge, errMetadataSize)
	}
	if lim := d.cfg.MaxRooms; lim > 0 && d.hub.Rooms() >= int64(lim) {
		return dialect.RoomSummary{}, dialect.APIErr(http.StatusServiceUnavailable, "too many rooms on this server: try again later")
	}
	st := &roomState{origin: "api", public: spec.Public}
	if spec.Metadata != nil {
		st.meta = slices.Clone(spec.Metadata)
	}
	var r *routing.Room
	if d.prof.slots {
		st.slot = &slotRoom{max: float64(max), maxText: itoa(max)} // slots 0: the first joiner is the host
		for i := 0; i < 10 && r == nil; i++ {
			r = d.hub.Create(base58Code(), 0)
		}
	} else {
		for i := 0; i < 64 && r == nil; i++ {
			r = d.hub.CreateSequenced(d.newCode(), max, time.Time{}, newEpoch(), 0, d.historyLimits(), &d.held)
		}
	}
	if r == nil {
		return dialect.RoomSummary{}, dialect.APIErr(http.StatusServiceUnavailable, "no free room code: try again")
	}
	r.SetExt(st)
	r.Locked(func([]*routing.Member) { d.born(r) })
	time.AfterFunc(d.cfg.EmptyRoomTTL, func() {
		if r.Discard() { // no-op once someone has joined
			dropState(r)
		}
	})
	return d.summary(r, st, nil), nil
}

// RoomDetail implements dialect.RoomAPI.
func (d *Dialect) RoomDetail(code string) (dialect.RoomDetail, error) {
	return d.rooms.apiDetail(code)
}

// apiDetail describes a room of this node (RoomDetail).
func (d local) apiDetail(code string) (dialect.RoomDetail, error) {
	r, st, err := d.apiRoom(code)
	if err != nil {
		return dialect.RoomDetail{}, err
	}
	var out dialect.RoomDetail
	r.Locked(func(members []*routing.Member) {
		out.RoomSummary = d.summary(r, st, members)
		out.Clients = make([]dialect.RoomClient, 0, len(members))
		for _, m := range members {
			pm := m.Data.(*member)
			c := dialect.RoomClient{ClientID: m.ID, Away: m.Conn == routing.Away, Metadata: pm.meta}
			if st.slot != nil {
				i := pm.index
				c.Index = &i
			}
			out.Clients = append(out.Clients, c)
		}
		out.Epoch, out.Seq = r.OffsetLocked()
	})
	st.mu.Lock()
	if st.state != nil {
		out.StateBytes = st.state.Len()
	}
	st.mu.Unlock()
	return out, nil
}

// SendToRoom implements dialect.RoomAPI: a "message" from "server". In a
// party room it takes the room's next seq and history like a member's.
func (d *Dialect) SendToRoom(code string, data []byte, to string) (int, error) {
	return d.rooms.apiSend(code, data, to)
}

// apiSend sends a message from "server" in a room of this node (SendToRoom).
func (d local) apiSend(code string, data []byte, to string) (int, error) {
	r, _, err := d.apiRoom(code)
	if err != nil {
		return 0, err
	}
	f := routing.NewText()
	f.AppendStr(`{"type":"message","from":"` + ServerID + `","data":`)
	f.Append(data...)
	defer f.Release()
	if d.prof.slots {
		f.Append('}')
		f.End()
		if to == "" {
			return d.broker.Publish(r, f, nil, false), nil
		}
		m := r.Lookup(to)
		if err := sendable(m, to); err != nil {
			return 0, err
		}
		r.SendTo(m, f, false) // behind the room's earlier frames
		return 1, nil
	}
	seq := r.BeginSeq()
	defer r.EndSeq()
	if d.hub.Get(r.Name) != r { // closed since it was found (the hub drops it under its lock)
		return 0, notFound(r.Name)
	}
	var target *routing.Member
	if to != "" {
		target = r.LookupLockedID(to)
		if err := sendable(target, to); err != nil {
			return 0, err
		}
	}
	appendSeq(f, seq)
	n := 1
	if target != nil {
		r.SendTo(target, f, false)
	} else {
		n = d.broker.Publish(r, f, nil, false)
	}
	d.committed(r, f, seq, ServerID, to, r.CommitSeq(f, ServerID, to))
	return n, nil
}

// sendable checks the target of an API send.
func sendable(m *routing.Member, to string) error {
	switch {
	case m == nil:
		return dialect.APIErr(http.StatusNotFound, "client not found: "+to)
	case m.Conn == routing.Away:
		return dialect.APIErr(http.StatusConflict, "client "+to+" is away (its seat is kept, its connection dropped)")
	}
	return nil
}

// KickMember implements dialect.RoomAPI: the seat goes at once (the
// others get peer_left), then the connection closes with 4003 and reason.
// A kept seat (away) is dropped as its grace would.
func (d *Dialect) KickMember(code, clientID, reason string) error {
	return d.rooms.apiKick(code, clientID, reason)
}

// apiKick removes a seat of a room of this node (KickMember).
func (d local) apiKick(code, clientID, reason string) error {
	r, st, err := d.apiRoom(code)
	if err != nil {
		return err
	}
	m := r.Lookup(clientID)
	if m == nil {
		return dialect.APIErr(http.StatusNotFound, "client not found: "+clientID)
	}
	pm := m.Data.(*member)
	// First: the session stops acting for the seat (current() is nil), so
	// nothing it sends after the kick reaches the room. Harmless on a
	// member that has just left or been replaced.
	pm.replaced.Store(true)
	away := m.Conn == routing.Away
	removed, remaining := r.LeaveThenAll(m, func(members []*routing.Member) {
		if d.seated(m) { // party-v2 announced an away slot when it dropped
			d.emitLocal(dialect.MemberLeft, r.Name, m.ID)
		}
		if len(members) == 0 {
			return
		}
		if !away || st.slot == nil {
			d.announce(r, d.prof.peerLeft, m, nil)
		}
		d.persistSeats(r, members)
		if st.slot != nil && pm.index == 0 && !away && connected(members) > 0 {
			d.armGrace(r, st.slot)
		}
	})
	if !removed {
		return dialect.APIErr(http.StatusNotFound, "client not found: "+clientID)
	}
	switch {
	case remaining == 0:
		dropState(r)
	case st.slot != nil && connected(r.Members()) == 0:
		d.teardown(r, func(members []*routing.Member) bool { return connected(members) == 0 }, CloseRoomEnded)
	}
	if c, ok := m.Conn.(dialect.Conn); ok {
		c.Close(CloseKicked, reason)
	}
	return nil
}

// Close codes of the rooms API.
const (
	CloseKicked = 4003 // POST /api/rooms/{code}/kick
)

// CloseRoom implements dialect.RoomAPI.
func (d *Dialect) CloseRoom(code string) (int, error) {
	return d.rooms.apiClose(code)
}

// apiClose ends a room of this node (CloseRoom).
func (d local) apiClose(code string) (int, error) {
	r, _, err := d.apiRoom(code)
	if err != nil {
		return 0, err
	}
	n, ok := d.teardown(r, nil, CloseClosed)
	if !ok {
		return 0, notFound(r.Name)
	}
	return n, nil
}
