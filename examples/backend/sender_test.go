package main

import (
	"testing"
	"time"

	"partyline/dialect"
	"partyline/webhook"
)

// partyline's own webhook sender against this receiver: the two sides of
// the documented format agree (signature, timestamp, event id, fields),
// including during a secret rotation (the sender signs with the new and
// the old secret, the receiver knows only the old one).
func TestPartylineSenderAccepted(t *testing.T) {
	rec := newRecorder(t, "old-secret")
	cfg := webhook.Config{URLs: []string{rec.srv.URL + "/webhook"}, Secrets: []string{"new-secret", "old-secret"}, Node: "node-a"}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	s := webhook.New(cfg)
	t.Cleanup(func() { s.Close(time.Second) })
	sent := []dialect.Event{
		{Type: dialect.RoomCreated, Dialect: "party", Room: "K7QX"},
		{Type: dialect.MemberJoined, Dialect: "party", Room: "K7QX", ClientID: "ann"},
		{Type: dialect.MemberLeft, Dialect: "rooms", Room: "lobby", Username: "bo"},
		{Type: dialect.RoomClosed, Dialect: "party", Room: "K7QX"},
	}
	for _, e := range sent {
		s.Emit(e)
	}
	deadline := time.Now().Add(10 * time.Second)
	got := rec.events()
	for ; len(got) < len(sent); got = rec.events() {
		if time.Now().After(deadline) {
			t.Fatalf("receiver accepted %d of %d events", len(got), len(sent))
		}
		time.Sleep(10 * time.Millisecond)
	}
	byType := map[string]Event{}
	for _, e := range got {
		if e.ID == "" || e.Node != "node-a" || e.Time == "" {
			t.Errorf("event without id, node or time: %+v", e)
		}
		byType[e.Type] = e
	}
	if e := byType["member.joined"]; e.Room != "K7QX" || e.ClientID != "ann" || e.Dialect != "party" {
		t.Errorf("member.joined: %+v", e)
	}
	if e := byType["member.left"]; e.Username != "bo" || e.Dialect != "rooms" {
		t.Errorf("member.left: %+v", e)
	}
	if _, ok := byType["room.closed"]; !ok || len(byType) != 4 {
		t.Errorf("types received: %v", byType)
	}
}
