package party_test

import (
	"strings"
	"testing"

	"partyline/internal/testutil"
	"partyline/server"
)

// TestMaxRooms: past --max-rooms a create gets an error and nothing else
// changes (the client may still join); a room that goes away makes room.
func TestMaxRooms(t *testing.T) {
	e := start(t, func(c *server.Config) { c.Party.MaxRooms, c.Party.Persist = 2, false })
	a, code, _ := e.create("a", nil)
	e.create("b", nil)
	c := e.dial()
	c.Send(map[string]any{"type": "create", "clientId": "c"})
	expectError(t, c, "too many rooms")
	// The refused client is unaffected: it can join an existing room.
	c.Send(map[string]any{"type": "join", "clientId": "c", "room": code})
	c.Expect("joined")
	a.Expect("peer_joined")
	c.Send(map[string]any{"type": "leave"})
	a.Expect("peer_left")
	// Room a empties and goes; a create succeeds again.
	a.Send(map[string]any{"type": "leave"})
	testutil.Eventually(t, func() bool {
		v, ok := e.metric("partyline_rooms", `dialect="party"`)
		return ok && v == 1
	})
	c.Send(map[string]any{"type": "create", "clientId": "c"})
	c.Expect("created")
}

// TestRoomCreateRate: one connection may create --room-creates-per-minute
// rooms a minute; past that create is refused, the connection stays and
// other connections may create.
func TestRoomCreateRate(t *testing.T) {
	e := start(t, func(c *server.Config) { c.Party.RoomCreatesPerMinute, c.Party.Persist = 2, false })
	c := e.dial()
	for i := range 2 {
		c.Send(map[string]any{"type": "create", "clientId": "c"})
		c.Expect("created")
		if i == 0 {
			c.Send(map[string]any{"type": "leave"})
		}
	}
	c.Send(map[string]any{"type": "leave"})
	c.Send(map[string]any{"type": "create", "clientId": "c"})
	expectError(t, c, "too many rooms created", "2 a minute")
	e.create("other", nil)
	// Still open and served.
	c.Send(map[string]any{"type": "join", "clientId": "c", "room": "ZZZZ"})
	expectError(t, c, "room not found")
}

// TestStateBytesTotal: --max-state-bytes-total bounds every room's state
// together; a set_state past it is refused with the room's state and
// everything else unchanged, and fits again once another room's state
// is gone. The total is the partyline_state_bytes gauge.
func TestStateBytesTotal(t *testing.T) {
	e := start(t, func(c *server.Config) { c.Party.MaxStateBytesTotal, c.Party.Persist = 300, false })
	big := `{"type":"set_state","state":"` + strings.Repeat("s", 150) + `"}`
	a, _, _ := e.create("a", nil)
	a.Send(big)
	a.Expect("state")
	used, ok := e.metric("partyline_state_bytes", `dialect="party"`)
	if !ok || used < 150 || used > 300 {
		t.Fatalf("partyline_state_bytes %v (%v), want the state's frame size", used, ok)
	}
	b, _, _ := e.create("b", nil)
	b.Send(`{"type":"set_state","state":{"small":1}}`)
	b.Expect("state")
	b.Send(big)
	expectError(t, b, "retained state is full")
	// The room and the connection are unaffected.
	b.Send(`{"type":"send","data":1}`)
	b.Send(`{"type":"set_state","state":{"small":2}}`)
	if m := b.Expect("state"); compact(t, mustJSON(t, m["state"])) != `{"small":2}` {
		t.Fatalf("state %v", m)
	}
	// a's room goes, and its state with it: b's big state fits.
	a.Send(map[string]any{"type": "leave"})
	testutil.Eventually(t, func() bool {
		v, _ := e.metric("partyline_state_bytes", `dialect="party"`)
		return v < 100
	})
	b.Send(big)
	b.Expect("state")
}
