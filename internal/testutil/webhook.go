package testutil

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"partyline/server"
	"partyline/webhook"
)

// HookSecret signs the deliveries to a HookReceiver.
const HookSecret = "test-webhook-secret"

// HookEvent is one webhook event as a receiver decodes it.
type HookEvent = webhook.Payload

// HookReceiver is a real HTTP webhook endpoint that verifies every
// delivery's signature (an unsigned or badly signed one fails the test)
// and keeps each event once (by id), in arrival order.
type HookReceiver struct {
	t   testing.TB
	URL string
	// Slow delays every answer by this many nanoseconds (a slow receiver).
	Slow atomic.Int64

	mu     sync.Mutex
	events []HookEvent
	seen   map[string]bool
}

// NewHookReceiver starts a receiver, closed when the test ends.
func NewHookReceiver(t testing.TB) *HookReceiver {
	h := &HookReceiver{t: t, seen: map[string]bool{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		time.Sleep(time.Duration(h.Slow.Load()))
		if err := webhook.Verify(HookSecret, r.Header.Get(webhook.HeaderTimestamp), r.Header.Get(webhook.HeaderSignature), body, time.Now()); err != nil {
			t.Errorf("webhook delivery refused: %v: %s", err, body)
			http.Error(w, err.Error(), http.StatusUnauthorized)
			return
		}
		var e HookEvent
		if err := json.Unmarshal(body, &e); err != nil || e.ID == "" || e.ID != r.Header.Get(webhook.HeaderEventID) {
			t.Errorf("webhook body %s: %v", body, err)
			http.Error(w, "bad body", http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		if !h.seen[e.ID] {
			h.seen[e.ID] = true
			h.events = append(h.events, e)
		}
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// Use points cfg's webhooks at h.
func (h *HookReceiver) Use(cfg *server.Config) {
	cfg.Webhook.URLs = append(cfg.Webhook.URLs, h.URL)
	cfg.Webhook.Secrets = []string{HookSecret}
}

// Events returns the events received so far.
func (h *HookReceiver) Events() []HookEvent {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]HookEvent(nil), h.events...)
}

// Room returns room's events so far as "type" or "type clientId".
func (h *HookReceiver) Room(room string) []string { return h.RoomOf(room, "") }

// RoomOf is Room for the events sent by node ("": every node's).
func (h *HookReceiver) RoomOf(room, node string) []string {
	var out []string
	for _, e := range h.Events() {
		if e.Room != room || node != "" && e.Node != node {
			continue
		}
		s := e.Type
		if who := e.ClientID + e.Username; who != "" {
			s += " " + who
		}
		out = append(out, s)
	}
	return out
}

// Expect waits until room's events are want (in order) and fails the test
// if they become anything else.
func (h *HookReceiver) Expect(room string, want ...string) {
	h.t.Helper()
	h.ExpectNodes(room, map[string][]string{"": want})
}

// ExpectNodes waits until room's events sent by each node of want are
// that node's list (in order; "" for every node's together) and fails
// the test if they become anything else. Events of one room sent by
// different nodes have no order between them.
func (h *HookReceiver) ExpectNodes(room string, want map[string][]string) {
	h.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		done := true
		for node, w := range want {
			got := h.RoomOf(room, node)
			if len(got) > len(w) || strings.Join(got, "|") != strings.Join(w[:len(got)], "|") || time.Now().After(deadline) {
				h.t.Fatalf("room %s webhook events of node %q:\n got %q\nwant %q", room, node, got, w)
			}
			done = done && len(got) == len(w)
		}
		if done {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}
