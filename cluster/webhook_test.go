package cluster_test

import (
	"testing"

	"partyline/internal/testutil"
	"partyline/server"
)

// TestWebhooksOncePerNode: two nodes post to one receiver; every change
// is sent once, by the node whose registry update made it (a join by the
// joiner's node, a leave by the leaver's, the close of a room and the
// departures it forces by the node that closed it), in order per node.
func TestWebhooksOncePerNode(t *testing.T) {
	ns := startNATS(t)
	hooks := testutil.NewHookReceiver(t)
	use := func(c *server.Config) { hooks.Use(c) }
	a := node(t, ns.url, "a", use)
	b := node(t, ns.url, "b", use)
	nodeA, nodeB := runID+"-"+t.Name()+"-a", runID+"-"+t.Name()+"-b"

	t.Run("party", func(t *testing.T) {
		ca, cb, code := aliceAndBob(t, a, b)
		cc := party(t, b)
		joinRoom(t, cc, "carol", code)
		ca.Expect("peer_joined")
		cb.Expect("peer_joined")
		cb.Send(M{"type": "leave"})
		ca.Expect("peer_left")
		// Closed through node a: it emits every remaining departure.
		if st, m := apiJSON(t, "DELETE", testutil.HTTPURL(a, "/api/rooms/")+code, nil); st != 200 {
			t.Fatalf("DELETE: %d %v", st, m)
		}
		ca.ExpectClose(4004)
		cc.ExpectClose(4004)
		hooks.ExpectNodes(code, map[string][]string{
			nodeA: {"room.created", "member.joined alice", "member.left alice", "member.left carol", "room.closed"},
			nodeB: {"member.joined bob", "member.joined carol", "member.left bob"},
		})
	})

	t.Run("party-v2", func(t *testing.T) {
		h := partyV2(t, a)
		h.Send(M{"type": "create", "clientId": "host", "maxClients": 4})
		code := h.Expect("created").Str("room")
		g, _ := v2Join(t, b, code, "g")
		h.Expect("peer_joined")
		_ = g.Conn.Close() // node b marks the slot off: its member.left
		h.Expect("peer_left")
		g2, _ := v2Join(t, a, code, "g") // reclaimed on node a
		h.Expect("peer_joined")
		h.Send(M{"type": "close_room"})
		h.ExpectClose(4001)
		g2.ExpectClose(4001)
		hooks.ExpectNodes(code, map[string][]string{
			nodeA: {"room.created", "member.joined host", "member.joined g", "member.left host", "member.left g", "room.closed"},
			nodeB: {"member.joined g", "member.left g"},
		})
	})

	t.Run("last member leaves", func(t *testing.T) {
		ca, cb, code := aliceAndBob(t, a, b)
		ca.Send(M{"type": "leave"})
		cb.Expect("peer_left")
		_ = cb.Conn.Close() // the room ends on node b
		hooks.ExpectNodes(code, map[string][]string{
			nodeA: {"room.created", "member.joined alice", "member.left alice"},
			nodeB: {"member.joined bob", "member.left bob", "room.closed"},
		})
	})
	for _, e := range hooks.Events() {
		if e.Dialect != "party" && e.Dialect != "party-v2" {
			t.Fatalf("event %+v", e)
		}
	}
}
