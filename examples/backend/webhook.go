package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The webhook receiver: partyline POSTs one JSON event per request, signed
// with HMAC-SHA256 over "<timestamp>.<raw body>" under the shared secret
// (--webhook-secret on the server, -secret here):
//
//	Partyline-Event-Id: 3f9c0a1b2d4e5f60
//	Partyline-Timestamp: 1764931200
//	Partyline-Signature: v1=<lowercase hex HMAC>[,v1=<another>]
//
// A request is accepted when any v1 value matches (the server sends one per
// secret while secrets rotate) and the timestamp is within Tolerance of this
// machine's clock. Delivery is at-least-once, so events are deduplicated by
// their id.

const (
	// DefaultTolerance is how far a signature's timestamp may be from now.
	DefaultTolerance = 5 * time.Minute
	// MaxEventBody is the largest event body read (413 past it).
	MaxEventBody = 64 << 10
	// maxSignatureHeader bounds the header the verifier parses.
	maxSignatureHeader = 4096
)

// The verification failures.
var (
	ErrNoSignature  = errors.New("missing Partyline-Signature or Partyline-Timestamp header")
	ErrBadTimestamp = errors.New("Partyline-Timestamp is not a Unix time in seconds")
	ErrStale        = errors.New("timestamp outside the tolerance: a replay, or a clock off by minutes")
	ErrMalformed    = errors.New("Partyline-Signature has no v1=<64 hex digits> value")
	ErrMismatch     = errors.New("no signature matches: wrong secret or altered body")
)

// Verifier checks signed webhook requests. Safe from any goroutine.
type Verifier struct {
	Secret    []byte
	Tolerance time.Duration    // 0: DefaultTolerance
	Now       func() time.Time // nil: time.Now
}

// Sign returns the v1 signature of body at the Unix time ts under secret.
func Sign(secret []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strconv.FormatInt(ts, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// ParseSignatures returns the v1 values of a Partyline-Signature header,
// decoded; other schemes are skipped (a future v2 next to v1), and so are
// v1 values that are not 64 hex digits. ErrMalformed when none is left.
func ParseSignatures(header string) ([][]byte, error) {
	if len(header) > maxSignatureHeader {
		return nil, ErrMalformed
	}
	var sigs [][]byte
	for _, part := range strings.Split(header, ",") {
		scheme, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || scheme != "v1" || len(val) != 2*sha256.Size {
			continue
		}
		b, err := hex.DecodeString(val)
		if err != nil {
			continue
		}
		sigs = append(sigs, b)
	}
	if len(sigs) == 0 {
		return nil, ErrMalformed
	}
	return sigs, nil
}

// Verify checks the headers' signature of body.
func (v *Verifier) Verify(sigHeader, tsHeader string, body []byte) error {
	if sigHeader == "" || tsHeader == "" {
		return ErrNoSignature
	}
	ts, err := strconv.ParseInt(tsHeader, 10, 64)
	if err != nil || ts <= 0 {
		return ErrBadTimestamp
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	tol := v.Tolerance
	if tol <= 0 {
		tol = DefaultTolerance
	}
	if d := now().Sub(time.Unix(ts, 0)); d > tol || d < -tol {
		return ErrStale
	}
	sigs, err := ParseSignatures(sigHeader)
	if err != nil {
		return err
	}
	want, _ := hex.DecodeString(Sign(v.Secret, ts, body))
	ok := false
	for _, s := range sigs {
		ok = hmac.Equal(s, want) || ok // constant time; every value checked
	}
	if !ok {
		return ErrMismatch
	}
	return nil
}

// Event is one webhook event (fields that do not apply are empty).
type Event struct {
	ID       string `json:"id"`
	Type     string `json:"type"` // room.created, room.closed, member.joined, member.left
	Dialect  string `json:"dialect"`
	Room     string `json:"room"`
	ClientID string `json:"clientId,omitempty"`
	Username string `json:"username,omitempty"`
	Node     string `json:"node"`
	Time     string `json:"time"`
}

// Seen remembers the last Cap event ids, oldest out first. Safe from any
// goroutine.
type Seen struct {
	mu   sync.Mutex
	ids  map[string]struct{}
	ring []string // insertion order; ring[next] is the oldest when full
	next int
}

// NewSeen returns a Seen holding at most n ids (n >= 1).
func NewSeen(n int) *Seen {
	return &Seen{ids: make(map[string]struct{}, n), ring: make([]string, 0, max(n, 1))}
}

// Add records id and reports whether it is new.
func (s *Seen) Add(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.ids[id]; dup {
		return false
	}
	if len(s.ring) < cap(s.ring) {
		s.ring = append(s.ring, id)
	} else {
		delete(s.ids, s.ring[s.next])
		s.ring[s.next] = id
		s.next = (s.next + 1) % len(s.ring)
	}
	s.ids[id] = struct{}{}
	return true
}

// Receiver is the webhook endpoint: it verifies, decodes, deduplicates
// and hands each new event to Handle (which logs it by default).
type Receiver struct {
	Verifier *Verifier
	Seen     *Seen
	Log      *slog.Logger
	Handle   func(Event) // nil: only the log line
}

func (rc *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		httpError(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxEventBody))
	if err != nil {
		httpError(w, http.StatusRequestEntityTooLarge, "body over "+strconv.Itoa(MaxEventBody)+" bytes")
		return
	}
	if err := rc.Verifier.Verify(r.Header.Get("Partyline-Signature"), r.Header.Get("Partyline-Timestamp"), body); err != nil {
		rc.Log.Warn("webhook refused", "err", err, "addr", r.RemoteAddr)
		httpError(w, http.StatusUnauthorized, err.Error())
		return
	}
	var ev Event
	if err := json.Unmarshal(body, &ev); err != nil || ev.ID == "" || ev.Type == "" {
		httpError(w, http.StatusBadRequest, fmt.Sprintf("not an event (needs id and type): %v", err))
		return
	}
	if h := r.Header.Get("Partyline-Event-Id"); h != "" && h != ev.ID {
		httpError(w, http.StatusBadRequest, "Partyline-Event-Id differs from the body's id")
		return
	}
	if !rc.Seen.Add(ev.ID) {
		rc.Log.Info("webhook duplicate", "id", ev.ID, "type", ev.Type)
		w.WriteHeader(http.StatusOK) // acknowledged: the first copy was handled
		return
	}
	rc.Log.Info("webhook", "id", ev.ID, "type", ev.Type, "dialect", ev.Dialect, "room", ev.Room,
		"clientId", ev.ClientID, "username", ev.Username, "node", ev.Node, "time", ev.Time)
	if rc.Handle != nil {
		rc.Handle(ev)
	}
	w.WriteHeader(http.StatusNoContent)
}

func httpError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	b, _ := json.Marshal(map[string]string{"error": msg})
	_, _ = w.Write(append(b, '\n'))
}
