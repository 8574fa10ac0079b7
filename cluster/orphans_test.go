package cluster_test

import (
	"net/http"
	"testing"
	"time"

	"partyline/internal/testutil"
	"partyline/server"
)

// The whole cluster stops (its only node drains, leaving its rooms in the
// registry for a reaper that never comes) and a new node starts after the
// old lease is gone: the new node removes what the lease-less node left,
// so no ghost room is listed, shown or joined.
func TestOrphansOfAStoppedClusterRemoved(t *testing.T) {
	ns := startNATS(t)
	a, stopA := testutil.StartStoppable(t, func(c *server.Config) {
		c.NATSURL, c.NodeID, c.NodeLease = ns.url, runID+"-"+t.Name()+"-a", 2*time.Second
	})
	var codes []string
	for _, id := range []string{"p1", "p2"} {
		code, _ := createRoom(t, party(t, a), id, 0)
		codes = append(codes, code)
	}
	apiA := testutil.HTTPURL(a, "/api/rooms/")
	for _, code := range codes {
		if st, m := getJSON(t, apiA+code); st != http.StatusOK {
			t.Fatalf("room %s on a: %d %v", code, st, m)
		}
	}
	stopA()

	b := node(t, ns.url, "b", nil)
	apiB := testutil.HTTPURL(b, "/api/rooms/")
	await(t, 15*time.Second, "the stopped node's rooms removed", func() bool {
		for _, code := range codes {
			if st, _ := getJSON(t, apiB+code); st != http.StatusNotFound {
				return false
			}
		}
		return true
	})
	c := party(t, b)
	if err := c.Conn.WriteMessage(1, []byte(`{"type":"join","clientId":"late","room":"`+codes[0]+`"}`)); err != nil {
		t.Fatal(err)
	}
	if m := c.Expect("error"); m.Str("message") == "" {
		t.Fatalf("join of a ghost room: %v", m)
	}
}
