package party

// The shared store's rooms API (list, detail, send, kick, close; it has no
// POST /api/rooms) and GET /room. They run on the HTTP goroutine of
// whichever node was asked (GET /room on the engine's worker: roomWork)
// against the room's registry record: list, detail and GET /room read it;
// send, kick and close reach the members on every node through the
// machinery members use: a send is an entry of the room's log (every node
// with members delivers it, seq and history included), a kick updates the
// record and asks the node that holds the socket to close it (a directed
// "<dialect>.kick" message), and a close deletes the record and tells
// every node to close its members (the "close" event).

import (
	"net/http"
	"slices"
	"strings"

	"partyline/backplane"
	"partyline/dialect"
)

// Header of a directed kick: the close reason.
const hdrReason = "Pl-Reason"

// clusterRoom reads a live room's record for the API.
func (d *shared) clusterRoom(code string) (roomRec, string, error) {
	code = d.apiCode(code)
	rec, ok := d.roomInfo(code)
	if !ok || rec.empty() {
		return roomRec{}, code, notFound(code)
	}
	return rec, code, nil
}

// live reports whether an entry has a connection (not an away seat, not
// a party-v2 slot whose socket closed).
func (x recMember) live() bool { return x.Away == 0 && !x.Off }

// apiSend appends a "message" from "server" to the room's log.
func (d *shared) apiSend(code string, data []byte, to string) (int, error) {
	rec, _, err := d.clusterRoom(code)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, x := range rec.Members {
		switch {
		case to != "" && x.Client == to && !x.live():
			return 0, dialect.APIErr(http.StatusConflict, "client "+to+" is away (its seat is kept, its connection dropped)")
		case to != "" && x.Client == to:
			n = 1
		case to == "" && x.live():
			n++
		}
	}
	if to != "" && n == 0 {
		return 0, dialect.APIErr(http.StatusNotFound, "client not found: "+to)
	}
	e := backplane.LogEntry{From: ServerID, To: to, Data: append([]byte(nil), data...)}
	if _, err := d.rlog.AppendSync(rec.ID, e); err != nil {
		return 0, dialect.APIErr(http.StatusServiceUnavailable, "cannot reach the room's log: "+err.Error())
	}
	return n, nil
}

// apiKick removes clientID's entry from the room (peer_left to the
// room if it was connected; a party-v2 host's kick starts the host grace)
// and has its node close the socket with 4003 and reason.
func (d *shared) apiKick(code, clientID, reason string) error {
	code = d.apiCode(code)
	var grace int64
	gone, err := d.updateRoom(code, func(rec *roomRec) []recMember {
		grace = 0
		for i, x := range rec.Members {
			if x.Client != clientID {
				continue
			}
			rec.Members = append(rec.Members[:i:i], rec.Members[i+1:]...)
			if rec.V2 && x.Index == 0 && x.live() && !rec.empty() {
				rec.Grace = d.graceDeadline()
				grace = rec.Grace
			}
			return []recMember{x}
		}
		return nil
	})
	if err != nil {
		return dialect.APIErr(http.StatusServiceUnavailable, "cannot update the room: "+err.Error())
	}
	if len(gone) == 0 {
		if _, _, err := d.clusterRoom(code); err != nil {
			return err
		}
		return dialect.APIErr(http.StatusNotFound, "client not found: "+clientID)
	}
	x := gone[0]
	if x.live() || !d.prof.slots { // party-v2 announced an off slot when it dropped
		d.announceLeft(code, x)
	}
	if grace != 0 {
		d.hostGrace(code, grace)
	}
	if !x.live() {
		return nil
	}
	hdr := backplane.Header{hdrRoom: {code}, hdrClient: {x.Client}, hdrInst: {x.Inst}, hdrReason: {reason}}
	if node, _ := backplane.MemberNode(x.Member); node != d.n.ID() {
		d.n.Direct(node, d.prof.name+".kick", hdr, nil)
		return nil
	}
	d.onKick(backplane.Msg{Header: hdr})
	return nil
}

// onKick closes a local connection kicked through the API (its entry is
// already gone from the record): 4003 and the reason.
func (d *shared) onKick(m backplane.Msg) { d.closeMember(m, CloseKicked, m.Header.Get(hdrReason)) }

// apiClose deletes the room's record and closes its members on every
// node with 4004 "room closed".
func (d *shared) apiClose(code string) (int, error) {
	code = d.apiCode(code)
	n, ok, err := d.endRoom(code, func(*roomRec) bool { return true }, CloseClosed)
	switch {
	case err != nil:
		return 0, dialect.APIErr(http.StatusServiceUnavailable, "cannot update the room: "+err.Error())
	case !ok:
		return 0, notFound(code)
	}
	return n, nil
}

// apiCode normalises a code from the API's path.
func (d *shared) apiCode(code string) string {
	if d.prof.slots {
		return code
	}
	return strings.ToUpper(code)
}

// errClusterAPI refuses POST /api/rooms in cluster mode.
var errClusterAPI = dialect.APIErr(http.StatusNotImplemented, "not available in cluster mode yet: the registry has no place for a room waiting for its first member")

// apiCreate: the registry has no room without a member (errClusterAPI).
func (d *shared) apiCreate(dialect.RoomSpec) (dialect.RoomSummary, error) {
	return dialect.RoomSummary{}, errClusterAPI
}

// apiDetail answers RoomDetail from the registry (every node's rooms).
func (d *shared) apiDetail(code string) (dialect.RoomDetail, error) {
	if !d.prof.slots {
		code = strings.ToUpper(code)
	}
	rec, ok := d.roomInfo(code)
	if !ok || rec.empty() {
		return dialect.RoomDetail{}, notFound(code)
	}
	out := dialect.RoomDetail{RoomSummary: dialect.RoomSummary{Code: code, Dialect: d.prof.name,
		Members: rec.size(), MaxClients: rec.capacity(), Created: rec.Created.UTC()}}
	out.Clients = make([]dialect.RoomClient, 0, len(rec.Members))
	for _, m := range rec.Members {
		c := dialect.RoomClient{ClientID: m.Client, Away: m.Away != 0 || m.Off, Metadata: m.Meta}
		if rec.V2 {
			c.Index = new(int)
			*c.Index = m.Index
		}
		out.Clients = append(out.Clients, c)
	}
	return out, nil
}

// apiList answers ListRooms from the registry (every node's rooms):
// the room keys after the cursor in code order, each read until the page
// is full. Cluster rooms have no listing fields yet: public=true lists
// none.
func (d *shared) apiList(f dialect.RoomFilter, after string, limit int) ([]dialect.RoomSummary, bool, error) {
	if f.PublicOnly {
		return []dialect.RoomSummary{}, false, nil
	}
	ctx, cancel := d.n.Ctx()
	defer cancel()
	keys, err := d.reg.Keys(ctx, d.roomKey(""))
	if err != nil {
		return nil, false, dialect.APIErr(http.StatusServiceUnavailable, "cannot list the cluster's rooms: "+err.Error())
	}
	var codes []string
	for _, k := range keys {
		if code := strings.TrimPrefix(k, d.roomKey("")); code > after && strings.HasPrefix(code, f.Prefix) {
			codes = append(codes, code)
		}
	}
	slices.Sort(codes)
	codes = slices.Compact(codes) // a lister may report a key twice
	out := []dialect.RoomSummary{}
	for _, code := range codes {
		rec, ok := d.roomInfo(code)
		if !ok || rec.empty() || (f.HasSpace && float64(rec.size()) >= rec.capacity()) {
			continue // deleted since it was listed, or full
		}
		if len(out) == limit {
			return out, true, nil
		}
		out = append(out, dialect.RoomSummary{Code: code, Dialect: d.prof.name, Members: rec.size(),
			MaxClients: rec.capacity(), Created: rec.Created.UTC()})
	}
	return out, false, nil
}

// roomAnswer answers a GET /room that the engine did not hand to
// roomWork (not a GET) with 501.
func (d *shared) roomAnswer(string) []byte {
	return plainResponse(501, "application/json", `{"error":"in cluster mode GET /room needs the GET method"}`, d.roomHeader())
}

// roomWork answers GET /room/<seg> from the room's registry record, off
// the loop (it blocks).
func (d *shared) roomWork(seg string) func() []byte {
	return func() []byte {
		hdr := d.roomHeader()
		code, ok := d.roomCodeOf(seg)
		var rec roomRec
		if ok {
			rec, ok = d.roomInfo(code)
		}
		if !ok || rec.empty() {
			return plainResponse(404, "application/json", `{"error":"Room not found"}`, hdr)
		}
		origin := rec.Origin
		if origin == "" {
			origin = "unknown"
		}
		if !rec.V2 {
			return roomBody(hdr, len(rec.Members), itoa(rec.Max), origin, "", false)
		}
		return roomBody(hdr, rec.size(), jsNumber(rec.MaxF), origin, rec.URL, rec.HasURL)
	}
}
