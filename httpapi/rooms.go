package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"partyline/dialect"
)

// The rooms API (docs/api.md): /api/rooms and /api/rooms/{code}, over
// every dialect that implements dialect.RoomAPI, behind the API guard.

const (
	// MaxAPIBody is the largest request body of the rooms API (413 past it).
	MaxAPIBody = 64 << 10
	// DefaultListLimit and MaxListLimit bound a listing page.
	DefaultListLimit = 100
	MaxListLimit     = 1000
	// maxCloseReason is the longest close reason a WebSocket close frame holds.
	maxCloseReason = 123
	maxCursor      = 128 // bytes of a decoded cursor (a room code)
	// MaxPrefix is the longest code prefix a listing searches for.
	MaxPrefix = 64
)

type roomsAPI struct {
	ds []dialect.RoomAPI // in the server's order: the first is the default
}

// mountRooms mounts the rooms API if a dialect serves it.
func mountRooms(mux dialect.Mux, api func(http.Handler) http.Handler, ds []dialect.Dialect) {
	var ra roomsAPI
	for _, d := range ds {
		if x, ok := d.(dialect.RoomAPI); ok {
			ra.ds = append(ra.ds, x)
		}
	}
	if len(ra.ds) == 0 {
		return
	}
	for pattern, h := range map[string]http.HandlerFunc{
		"GET /api/rooms":              ra.list,
		"POST /api/rooms":             ra.create,
		"GET /api/rooms/{code}":       ra.detail,
		"DELETE /api/rooms/{code}":    ra.closeRoom,
		"POST /api/rooms/{code}/send": ra.send,
		"POST /api/rooms/{code}/kick": ra.kick,
	} {
		mux.Handle(pattern, api(h))
	}
}

// named returns the dialect called name ("": the default).
func (ra *roomsAPI) named(name string) (dialect.RoomAPI, error) {
	if name == "" {
		return ra.ds[0], nil
	}
	for _, d := range ra.ds {
		if d.Name() == name {
			return d, nil
		}
	}
	names := make([]string, len(ra.ds))
	for i, d := range ra.ds {
		names[i] = d.Name()
	}
	return nil, dialect.APIErr(http.StatusUnprocessableEntity, "dialect "+strconv.Quote(name)+" has no rooms API (one of: "+strings.Join(names, ", ")+")")
}

// holder returns the dialect of the room in r's path: the one named by
// ?dialect=, else the first that has it (in cluster mode party-v2 answers
// 501, which yields to party's 404).
func (ra *roomsAPI) holder(r *http.Request) (dialect.RoomAPI, error) {
	code := r.PathValue("code")
	if name := r.URL.Query().Get("dialect"); name != "" {
		return ra.named(name)
	}
	var first error // the first refusal, a 501 only if every dialect answers so
	for _, d := range ra.ds {
		_, err := d.RoomDetail(code)
		switch {
		case err == nil:
			return d, nil
		case status(err) != http.StatusNotFound && status(err) != http.StatusNotImplemented:
			return nil, err
		case first == nil || status(first) == http.StatusNotImplemented:
			first = err
		}
	}
	return nil, first
}

func (ra *roomsAPI) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	d, err := ra.named(q.Get("dialect"))
	if err != nil {
		fail(w, err)
		return
	}
	var f dialect.RoomFilter
	var bad string
	f.PublicOnly, bad = boolParam(q, "public", bad)
	f.HasSpace, bad = boolParam(q, "has_space", bad)
	limit := DefaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLimit {
			bad = "limit must be an integer from 1 to " + strconv.Itoa(MaxListLimit)
		}
		limit = n
	}
	f.Prefix = q.Get("prefix")
	if len(f.Prefix) > MaxPrefix || !utf8.ValidString(f.Prefix) {
		bad = "prefix must be valid UTF-8 of at most " + strconv.Itoa(MaxPrefix) + " bytes"
	}
	after, ok := DecodeCursor(q.Get("cursor"))
	if !ok {
		bad = "invalid cursor: pass back a nextCursor unchanged"
	}
	if bad != "" {
		dialect.HTTPError(w, http.StatusUnprocessableEntity, bad)
		return
	}
	rooms, more, err := d.ListRooms(f, after, limit)
	if err != nil {
		fail(w, err)
		return
	}
	out := struct {
		Rooms      []dialect.RoomSummary `json:"rooms"`
		NextCursor string                `json:"nextCursor,omitempty"`
	}{Rooms: rooms}
	if more && len(rooms) > 0 {
		out.NextCursor = EncodeCursor(rooms[len(rooms)-1].Code)
	}
	reply(w, http.StatusOK, out)
}

// boolParam reads an optional true/false query parameter; a bad value
// sets bad (unless it is set already).
func boolParam(q map[string][]string, name, bad string) (bool, string) {
	v := ""
	if vs := q[name]; len(vs) > 0 {
		v = vs[0]
	}
	switch v {
	case "", "false":
		return false, bad
	case "true":
		return true, bad
	}
	if bad == "" {
		bad = name + " must be true or false"
	}
	return false, bad
}

// EncodeCursor is the opaque cursor after the room code.
func EncodeCursor(code string) string { return base64.RawURLEncoding.EncodeToString([]byte(code)) }

// DecodeCursor reads a cursor ("": from the start); false if it is not one.
func DecodeCursor(c string) (string, bool) {
	if c == "" {
		return "", true
	}
	if len(c) > base64.RawURLEncoding.EncodedLen(maxCursor) {
		return "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) == 0 || !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

type createReq struct {
	Dialect    string          `json:"dialect"`
	MaxClients int             `json:"maxClients"`
	Public     bool            `json:"public"`
	Metadata   json.RawMessage `json:"metadata"`
}

func (ra *roomsAPI) create(w http.ResponseWriter, r *http.Request) {
	var req createReq
	if !readBody(w, r, &req) {
		return
	}
	d, err := ra.named(req.Dialect)
	if err != nil {
		fail(w, err)
		return
	}
	if req.MaxClients < 0 {
		dialect.HTTPError(w, http.StatusUnprocessableEntity, "maxClients must be a positive integer")
		return
	}
	if string(req.Metadata) == "null" {
		req.Metadata = nil
	}
	room, err := d.CreateRoom(dialect.RoomSpec{MaxClients: req.MaxClients, Public: req.Public, Metadata: req.Metadata})
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusCreated, room)
}

// detailBody is GET /api/rooms/{code}: "room" repeats "code" (the field
// the endpoint answered before the rooms API).
type detailBody struct {
	Room string `json:"room"`
	dialect.RoomDetail
}

func (ra *roomsAPI) detail(w http.ResponseWriter, r *http.Request) {
	d, err := ra.holder(r)
	if err != nil {
		fail(w, err)
		return
	}
	room, err := d.RoomDetail(r.PathValue("code"))
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, detailBody{Room: room.Code, RoomDetail: room})
}

type sendReq struct {
	Data json.RawMessage `json:"data"`
	To   string          `json:"to"`
}

func (ra *roomsAPI) send(w http.ResponseWriter, r *http.Request) {
	var req sendReq
	if !readBody(w, r, &req) {
		return
	}
	if len(req.Data) == 0 {
		dialect.HTTPError(w, http.StatusUnprocessableEntity, "send needs data (any JSON value)")
		return
	}
	d, err := ra.holder(r)
	if err != nil {
		fail(w, err)
		return
	}
	n, err := d.SendToRoom(r.PathValue("code"), req.Data, req.To)
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, map[string]int{"delivered": n})
}

type kickReq struct {
	ClientID string `json:"clientId"`
	Reason   string `json:"reason"`
}

func (ra *roomsAPI) kick(w http.ResponseWriter, r *http.Request) {
	var req kickReq
	if !readBody(w, r, &req) {
		return
	}
	switch {
	case req.ClientID == "":
		dialect.HTTPError(w, http.StatusUnprocessableEntity, "kick needs a clientId")
		return
	case len(req.Reason) > maxCloseReason:
		dialect.HTTPError(w, http.StatusUnprocessableEntity, "reason too long: a close frame holds at most "+strconv.Itoa(maxCloseReason)+" bytes")
		return
	}
	d, err := ra.holder(r)
	if err != nil {
		fail(w, err)
		return
	}
	if err := d.KickMember(r.PathValue("code"), req.ClientID, req.Reason); err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, map[string]string{"kicked": req.ClientID})
}

func (ra *roomsAPI) closeRoom(w http.ResponseWriter, r *http.Request) {
	d, err := ra.holder(r)
	if err != nil {
		fail(w, err)
		return
	}
	n, err := d.CloseRoom(r.PathValue("code"))
	if err != nil {
		fail(w, err)
		return
	}
	reply(w, http.StatusOK, map[string]any{"closed": true, "members": n})
}

// readBody decodes a JSON object body of at most MaxAPIBody bytes into v;
// otherwise it answers 413 or 422 and returns false.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxAPIBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		dialect.HTTPError(w, http.StatusRequestEntityTooLarge, "request body too large: at most "+strconv.Itoa(MaxAPIBody)+" bytes")
		return false
	case err != nil:
		dialect.HTTPError(w, http.StatusBadRequest, "cannot read the request body: "+err.Error())
		return false
	}
	if err := json.Unmarshal(b, v); err != nil {
		dialect.HTTPError(w, http.StatusUnprocessableEntity, "invalid JSON body: "+err.Error())
		return false
	}
	return true
}

func status(err error) int {
	var ae *dialect.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return http.StatusInternalServerError
}

// fail answers err: an *APIError with its status, anything else 500.
func fail(w http.ResponseWriter, err error) {
	dialect.HTTPError(w, status(err), err.Error())
}

func reply(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		dialect.HTTPError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(b, '\n'))
}
