package notify

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bytedance/sonic"

	"partyline/codec"
	"partyline/dialect"
	"partyline/routing"
)

// Routes mounts POST /api/notify and POST /api/broadcast behind the API
// key check. The handlers run on net/http goroutines: they only build
// frames and publish them (Conn.Send is safe from any goroutine).
func (d *Dialect) Routes(mux dialect.Mux, api func(http.Handler) http.Handler) {
	mux.Handle("POST /api/notify", api(http.HandlerFunc(d.postNotify)))
	mux.Handle("POST /api/broadcast", api(http.HandlerFunc(d.postBroadcast)))
}

// Notify sends {"type":"notification",...fields,"timestamp":MILLIS} to
// every connection of the user, on every node, and returns how many it
// was queued for: this node's, plus the other nodes' counted in the census
// (in a cluster it blocks on one key-value read: call it from an HTTP
// goroutine). fields is a JSON object. Safe from any goroutine.
func (d *Dialect) Notify(userKey string, fields map[string]sonic.NoCopyRawMessage) int {
	f := spread("notification", fields, time.Now())
	n := d.bus.PublishName(userKey, f, false, nil)
	f.Release()
	return n + remote(d.userCensus, userKey)
}

// Broadcast sends {"type":"broadcast",...fields,"timestamp":MILLIS} to every
// /notify connection, on every node, and returns how many it was queued
// for, counted as Notify's. Safe from any goroutine; blocks as Notify.
func (d *Dialect) Broadcast(fields map[string]sonic.NoCopyRawMessage) int {
	f := spread("broadcast", fields, time.Now())
	n := d.broadcastLocal(f)
	d.bp.PublishAll("notify", f, nil)
	f.Release()
	return n + remote(d.allCensus, allRoom)
}

// notifyBody is POST /api/notify's body, undecoded.
type notifyBody struct {
	UserID       sonic.NoCopyRawMessage `json:"userId"`
	Notification sonic.NoCopyRawMessage `json:"notification"`
}

func (d *Dialect) postNotify(w http.ResponseWriter, r *http.Request) {
	body, ok := d.readBody(w, r)
	if !ok {
		return
	}
	var req notifyBody
	if err := codec.JSONNoCopy.Unmarshal(body, &req); err != nil {
		dialect.HTTPError(w, http.StatusBadRequest, `invalid body: want {"userId":...,"notification":{...}}: `+firstLine(err))
		return
	}
	key, ok := userKey(req.UserID)
	if !ok {
		dialect.HTTPError(w, http.StatusBadRequest, "invalid userId: a non-empty string of at most "+strconv.Itoa(MaxUserID)+" bytes, or a number")
		return
	}
	fields, ok := object(req.Notification)
	if !ok {
		dialect.HTTPError(w, http.StatusBadRequest, "invalid notification: a JSON object is required")
		return
	}
	n := d.Notify(key, fields)
	b := append([]byte(`{"delivered":`), strconv.FormatBool(n > 0)...)
	b = append(b, `,"connections":`...)
	b = strconv.AppendInt(b, int64(n), 10)
	writeJSON(w, append(b, "}\n"...))
}

func (d *Dialect) postBroadcast(w http.ResponseWriter, r *http.Request) {
	body, ok := d.readBody(w, r)
	if !ok {
		return
	}
	fields, ok := object(body)
	if !ok {
		dialect.HTTPError(w, http.StatusBadRequest, "invalid body: a JSON object is required")
		return
	}
	n := d.Broadcast(fields)
	b := strconv.AppendInt([]byte(`{"connections":`), int64(n), 10)
	writeJSON(w, append(b, "}\n"...))
}

// readBody reads at most MaxBody bytes, answering 413 beyond and 400 on a
// read error.
func (d *Dialect) readBody(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(d.cfg.MaxBody)))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			dialect.HTTPError(w, http.StatusRequestEntityTooLarge, "body too large: at most "+strconv.Itoa(d.cfg.MaxBody)+" bytes")
		} else {
			dialect.HTTPError(w, http.StatusBadRequest, "cannot read body: "+err.Error())
		}
		return nil, false
	}
	return body, true
}

// object decodes a JSON object into its fields; ok is false for anything
// else (null included).
func object(raw []byte) (map[string]sonic.NoCopyRawMessage, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return nil, false
	}
	var fields map[string]sonic.NoCopyRawMessage
	if err := codec.JSONNoCopy.Unmarshal(raw, &fields); err != nil {
		return nil, false
	}
	return fields, true
}

// spread encodes {"type":typ,...fields,"timestamp":MILLIS} with the
// seed's JavaScript spread semantics: a "type" field in fields replaces
// typ, and the server's timestamp replaces any "timestamp" field. Field
// order carries no meaning; fields are written sorted, so the output is
// deterministic.
func spread(typ string, fields map[string]sonic.NoCopyRawMessage, now time.Time) *routing.Frame {
	f := routing.NewText()
	f.AppendStr(`{"type":`)
	if t, ok := fields["type"]; ok {
		f.Append(t...)
	} else {
		f.SetBuf(codec.AppendString(f.Buf(), typ))
	}
	keys := make([]string, 0, len(fields))
	for k := range fields {
		if k != "type" && k != "timestamp" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		f.Append(',')
		f.SetBuf(codec.AppendString(f.Buf(), k))
		f.Append(':')
		f.Append(fields[k]...)
	}
	f.AppendStr(`,"timestamp":`)
	f.SetBuf(codec.AppendInt(f.Buf(), now.UnixMilli()))
	f.Append('}')
	return f.End()
}

func writeJSON(w http.ResponseWriter, b []byte) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(b)
}

// firstLine trims sonic's multi-line syntax errors to their first line.
func firstLine(err error) string {
	s, _, _ := strings.Cut(err.Error(), "\n")
	return s
}
