package party

// The rooms API's actions in cluster mode (send, kick, close): they run on
// the HTTP goroutine of whichever node was asked, against the room's
// registry record, and reach the members on every node through the
// machinery members use: a send is an entry of the room's log (every node
// with members delivers it, seq and history included), a kick updates the
// record and asks the node that holds the socket to close it (a directed
// "<dialect>.kick" message), and a close deletes the record and tells
// every node to close its members (the "close" event).

import (
	"net/http"
	"strings"

	"partyline/backplane"
	"partyline/dialect"
)

// Header of a directed kick: the close reason.
const hdrReason = "Pl-Reason"

// clusterRoom reads a live room's record for the API.
func (d *Dialect) clusterRoom(code string) (roomRec, string, error) {
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

// clusterSend appends a "message" from "server" to the room's log.
func (d *Dialect) clusterSend(code string, data []byte, to string) (int, error) {
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
	if _, err := d.cl.log.AppendSync(rec.ID, e); err != nil {
		return 0, dialect.APIErr(http.StatusServiceUnavailable, "cannot reach the room's log: "+err.Error())
	}
	return n, nil
}

// clusterKick removes clientID's entry from the room (peer_left to the
// room if it was connected; a party-v2 host's kick starts the host grace)
// and has its node close the socket with 4003 and reason.
func (d *Dialect) clusterKick(code, clientID, reason string) error {
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
	if node, _ := backplane.MemberNode(x.Member); node != d.cl.n.ID() {
		d.cl.n.Direct(node, d.prof.name+".kick", hdr, nil)
		return nil
	}
	d.onKick(backplane.Msg{Header: hdr})
	return nil
}

// onKick closes a local connection kicked through the API (its entry is
// already gone from the record): 4003 and the reason.
func (d *Dialect) onKick(m backplane.Msg) { d.closeMember(m, CloseKicked, m.Header.Get(hdrReason)) }

// clusterClose deletes the room's record and closes its members on every
// node with 4004 "room closed".
func (d *Dialect) clusterClose(code string) (int, error) {
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
func (d *Dialect) apiCode(code string) string {
	if d.prof.slots {
		return code
	}
	return strings.ToUpper(code)
}
