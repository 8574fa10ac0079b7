package party_test

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"partyline/internal/testutil"
	"partyline/server"
)

// A room fanned out across two event loops (--fanout-min 2): joins are
// announced to exactly the members before them, and every member receives
// the room's broadcasts and the messages addressed to it in seq order.
func TestFanoutAcrossLoopsKeepsSeqOrder(t *testing.T) {
	e := start(t, func(c *server.Config) { c.EventLoops = 2; c.FanoutMin = 2 })
	a, code, _ := e.create("a", nil)
	clients := []*testutil.Client{a}
	for i := 1; i < 12; i++ {
		c, _ := e.join(code, "m"+strconv.Itoa(i), clients...)
		clients = append(clients, c)
	}
	want := make([]int, len(clients)) // messages each member is due
	for i := range 60 {
		req := map[string]any{"type": "send", "data": i}
		if i%3 == 1 {
			k := 1 + i%11
			req["to"] = "m" + strconv.Itoa(k)
			want[k]++
		} else {
			for k := 1; k < len(clients); k++ {
				want[k]++
			}
		}
		a.Send(req)
	}
	for k, c := range clients[1:] {
		last := int64(0)
		for n := 0; n < want[k+1]; n++ {
			m := c.Expect("message")
			if s := seqOf(m); s <= last {
				t.Fatalf("member %d: seq %d after %d", k+1, s, last)
			} else {
				last = s
			}
		}
	}
	resp, err := http.Get(testutil.HTTPURL(e.srv, "/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := regexp.MustCompile(`partyline_fanout_deliveries_total\{[^}]*\} (\S+)`).FindSubmatch(body)
	if m == nil || string(m[1]) == "0" {
		t.Fatalf("no fan-out deliveries counted: %q", m)
	}
}
