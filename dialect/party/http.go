package party

import (
	"net/http"
	"strings"
	"time"

	"partyline/codec"
	"partyline/dialect"
)

// Routes mounts GET /api/rooms/{code} (party; party-v2 answers GET
// /room/{code} on its WebSocket port instead, plain.go).
func (d *Dialect) Routes(mux *http.ServeMux, api func(http.Handler) http.Handler) {
	if d.prof.slots {
		return
	}
	mux.Handle("GET /api/rooms/{code}", api(http.HandlerFunc(d.getRoom)))
}

func (d *Dialect) getRoom(w http.ResponseWriter, r *http.Request) {
	code := strings.ToUpper(r.PathValue("code"))
	var members, max int
	var created time.Time
	if d.cl != nil { // cluster mode: the registry answers for every node
		rec, ok := d.roomInfo(code)
		if !ok {
			dialect.HTTPError(w, http.StatusNotFound, "room not found: "+code)
			return
		}
		members, max, created = len(rec.Members), rec.Max, rec.Created
	} else {
		room := d.hub.Get(code)
		if room == nil {
			dialect.HTTPError(w, http.StatusNotFound, "room not found: "+code)
			return
		}
		members, max, created = room.Len(), room.Max, room.Created
	}
	b := append([]byte(`{"room":`), codec.AppendString(nil, code)...)
	b = append(b, `,"members":`...)
	b = codec.AppendInt(b, int64(members))
	b = append(b, `,"maxClients":`...)
	b = codec.AppendInt(b, int64(max))
	b = append(b, `,"created":`...)
	b = codec.AppendString(b, created.UTC().Format(time.RFC3339Nano))
	b = append(b, "}\n"...)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}
