package party_test

import (
	"testing"
	"time"

	"partyline/internal/testutil"
	"partyline/server"
)

// TestWebhooksParty drives real party clients through every way a member
// joins or leaves and a room ends, and checks each room's webhook events,
// in order, at a real signed-webhook receiver.
func TestWebhooksParty(t *testing.T) {
	runHookCases(t, "party", start, []hookCase[*env]{
		{"leave, then the last socket closes", nil, func(t *testing.T, e *env) (string, []string) {
			a, code, _ := e.create("a", nil)
			b, _ := e.join(code, "b", a)
			b.Send(map[string]any{"type": "leave"})
			a.Expect("peer_left")
			_ = a.Conn.Close()
			return code, []string{"room.created", "member.joined a", "member.joined b", "member.left b", "member.left a", "room.closed"}
		}},
		{"kick, then DELETE", nil, func(t *testing.T, e *env) (string, []string) {
			a, code, _ := e.create("a", nil)
			b, _ := e.join(code, "b", a)
			_, _ = e.join(code, "c", a, b)
			if st, m := e.api("POST", "/api/rooms/"+code+"/kick", map[string]any{"clientId": "b", "reason": "x"}); st != 200 {
				t.Fatalf("kick: %d %v", st, m)
			}
			if st, m := e.api("DELETE", "/api/rooms/"+code, nil); st != 200 {
				t.Fatalf("DELETE: %d %v", st, m)
			}
			return code, []string{"room.created", "member.joined a", "member.joined b", "member.joined c", "member.left b",
				"member.left a", "member.left c", "room.closed"}
		}},
		{"a replacement is no event", nil, func(t *testing.T, e *env) (string, []string) {
			a, code, tok := e.create("a", nil)
			a2 := e.dial()
			a2.Send(map[string]any{"type": "join", "clientId": "a", "room": code, "token": tok})
			a2.Expect("joined")
			a.ExpectClose(4000)
			a2.Send(map[string]any{"type": "leave"})
			return code, []string{"room.created", "member.joined a", "member.left a", "room.closed"}
		}},
		{"seat grace: left when it expires, not when the socket closes", func(c *server.Config) { c.Party.SeatGrace = 300 * time.Millisecond },
			func(t *testing.T, e *env) (string, []string) {
				a, code, _ := e.create("a", nil)
				b, _ := e.join(code, "b", a)
				_ = b.Conn.Close()
				a.Expect("peer_away")
				a.Expect("peer_left")
				a.Send(map[string]any{"type": "leave"})
				return code, []string{"room.created", "member.joined a", "member.joined b", "member.left b", "member.left a", "room.closed"}
			}},
		{"seat grace: back in time is no event", func(c *server.Config) { c.Party.SeatGrace = time.Minute },
			func(t *testing.T, e *env) (string, []string) {
				a, code, tok := e.create("a", nil)
				_ = a.Conn.Close()
				a2 := e.dial()
				a2.Send(map[string]any{"type": "join", "clientId": "a", "room": code, "token": tok})
				a2.Expect("joined")
				if st, _ := e.api("DELETE", "/api/rooms/"+code, nil); st != 200 {
					t.Fatalf("DELETE: %d", st)
				}
				return code, []string{"room.created", "member.joined a", "member.left a", "room.closed"}
			}},
		{"an API room nobody joins", func(c *server.Config) { c.Party.EmptyRoomTTL = 200 * time.Millisecond },
			func(t *testing.T, e *env) (string, []string) {
				return e.apiCreate(nil), []string{"room.created", "room.closed"}
			}},
		{"an API room joined, then left", nil, func(t *testing.T, e *env) (string, []string) {
			code := e.apiCreate(nil)
			a, _ := e.join(code, "a")
			a.Send(map[string]any{"type": "leave"})
			return code, []string{"room.created", "member.joined a", "member.left a", "room.closed"}
		}},
	})
}

// hookCase is one scenario of a dialect's webhook events: run drives
// clients on a server whose webhooks go to a receiver and returns the
// room and the events it must have produced, in order.
type hookCase[E any] struct {
	name   string
	mutate func(*server.Config)
	run    func(t *testing.T, e E) (code string, want []string)
}

func runHookCases[E any](t *testing.T, dialect string, start func(*testing.T, func(*server.Config)) E, cases []hookCase[E]) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hooks := testutil.NewHookReceiver(t)
			e := start(t, func(c *server.Config) {
				c.NodeID = "node-1"
				hooks.Use(c)
				if tc.mutate != nil {
					tc.mutate(c)
				}
			})
			code, want := tc.run(t, e)
			hooks.Expect(code, want...)
			for _, ev := range hooks.Events() {
				if ev.Dialect != dialect || ev.Node != "node-1" || ev.Time == "" || len(ev.ID) < 16 {
					t.Fatalf("event %+v", ev)
				}
			}
		})
	}
}

// TestWebhooksPartyV2: a slot leaves when its socket closes and joins
// again when reclaimed; close_room, the host grace and the last socket
// end the room after every connected member's member.left.
func TestWebhooksPartyV2(t *testing.T) {
	runHookCases(t, "party-v2", startV2, []hookCase[*v2env]{
		{"drop, reclaim, close_room", nil, func(t *testing.T, e *v2env) (string, []string) {
			host, g, code := e.pair()
			_ = g.Conn.Close()
			host.Expect("peer_left")
			_, _ = e.join(code, "g")
			host.Expect("peer_joined")
			host.Send(map[string]any{"type": "close_room"})
			host.ExpectClose(4001)
			return code, []string{"room.created", "member.joined host", "member.joined g", "member.left g", "member.joined g",
				"member.left host", "member.left g", "room.closed"}
		}},
		{"host grace", func(c *server.Config) { c.Party.HostGrace = 200 * time.Millisecond }, func(t *testing.T, e *v2env) (string, []string) {
			host, g, code := e.pair()
			_ = host.Conn.Close()
			g.Expect("peer_left")
			g.ExpectClose(4001)
			return code, []string{"room.created", "member.joined host", "member.joined g", "member.left host", "member.left g", "room.closed"}
		}},
		{"the last socket closes", nil, func(t *testing.T, e *v2env) (string, []string) {
			host, g, code := e.pair()
			_ = g.Conn.Close()
			host.Expect("peer_left")
			_ = host.Conn.Close()
			return code, []string{"room.created", "member.joined host", "member.joined g", "member.left g", "member.left host", "room.closed"}
		}},
	})
}

// TestWebhooksShutdownDrain: a graceful shutdown closes the members'
// sockets, and the events that follow (their member.left, the rooms'
// room.closed) reach a slow receiver before the server has stopped.
func TestWebhooksShutdownDrain(t *testing.T) {
	hooks := testutil.NewHookReceiver(t)
	hooks.Slow.Store(int64(100 * time.Millisecond)) // 3 events a room after the sockets close: 300 ms at least
	srv, stop := testutil.StartStoppable(t, func(c *server.Config) {
		hooks.Use(c)
		c.Party.Persist = false // a persisted room outlives a restart: no event
		c.Webhook.Drain = time.Minute
	})
	e := &env{t: t, srv: srv, url: testutil.URL(srv, 0, "/party")}
	var codes []string
	for _, id := range []string{"a", "b", "c"} {
		c, code, _ := e.create(id, nil)
		_, _ = e.join(code, id+"2", c)
		codes = append(codes, code)
	}
	stop()
	for i, code := range codes {
		id := []string{"a", "b", "c"}[i]
		got := hooks.Room(code) // no waiting: the shutdown delivered them
		if len(got) != 6 || got[0] != "room.created" || got[1] != "member.joined "+id || got[2] != "member.joined "+id+"2" || got[5] != "room.closed" {
			t.Fatalf("room %s after the shutdown: %q", code, got)
		}
		if left := map[string]bool{got[3]: true, got[4]: true}; !left["member.left "+id] || !left["member.left "+id+"2"] {
			t.Fatalf("room %s after the shutdown: %q", code, got)
		}
	}
}
