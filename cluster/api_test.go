package cluster_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"

	"partyline/internal/testutil"
)

// apiJSON calls the HTTP API with an optional JSON body.
func apiJSON(t testing.TB, method, url string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return resp.StatusCode, m
}

// ours lists the codes of a rooms page that are among mine: a NATS at
// $NATS_URL is shared with other tests (and their rooms, until the nodes
// that made them are reaped).
func ours(page map[string]any, mine []string) []string {
	var codes []string
	for _, r := range page["rooms"].([]any) {
		if c := r.(map[string]any)["code"].(string); slices.Contains(mine, c) {
			codes = append(codes, c)
		}
	}
	return codes
}

// The rooms API in cluster mode: every node lists every node's rooms
// from the registry, page by page; what it cannot do yet answers 501.
func TestPartyAPIAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)
	var want []string
	for i, s := range []*testutil.Client{party(t, a), party(t, b), party(t, a), party(t, b)} {
		max := 0
		if i == 0 {
			max = 1 // full
		}
		code, _ := createRoom(t, s, "c", max)
		want = append(want, code)
	}
	slices.Sort(want)
	for _, s := range []string{testutil.HTTPURL(a, ""), testutil.HTTPURL(b, "")} {
		var got []string
		cursor := ""
		for page := 0; page < 10; page++ {
			st, m := apiJSON(t, "GET", s+"/api/rooms?limit=1&cursor="+cursor, nil)
			if st != 200 {
				t.Fatalf("list: %d %v", st, m)
			}
			got = append(got, ours(m, want)...)
			if cursor, _ = m["nextCursor"].(string); cursor == "" {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("listed %v, want %v", got, want)
		}
		if _, m := apiJSON(t, "GET", s+"/api/rooms?has_space=true", nil); len(ours(m, want)) != 3 {
			t.Fatalf("rooms with space: %v", m)
		}
		st, m := apiJSON(t, "GET", s+"/api/rooms/"+want[0], nil)
		if cl, _ := m["clients"].([]any); st != 200 || len(cl) != 1 || cl[0].(map[string]any)["clientId"] != "c" {
			t.Fatalf("detail: %d %v", st, m)
		}
		if st, m := apiJSON(t, "POST", s+"/api/rooms", map[string]any{}); st != http.StatusNotImplemented {
			t.Fatalf("POST /api/rooms: %d %v, want 501", st, m)
		}
	}
}

// The rooms API's actions in cluster mode, asked of the node that does not
// hold the members: send reaches members on both nodes (party: with its
// seq, from "server"; to one member), kick closes the socket on the other
// node with 4003 and tells the rest, close ends every member with 4004.
func TestPartyAPIActionsAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)
	api := testutil.HTTPURL(b, "/api/rooms/")
	ca, cb, code := aliceAndBob(t, a, b)
	cc := party(t, a)
	joinRoom(t, cc, "carol", code)
	ca.Expect("peer_joined")
	cb.Expect("peer_joined")

	if st, m := apiJSON(t, "POST", api+code+"/send", map[string]any{"data": map[string]any{"round": 1}}); st != 200 {
		t.Fatalf("send: %d %v", st, m)
	}
	for _, c := range []*testutil.Client{ca, cb, cc} {
		m := c.Expect("message")
		if m.Str("from") != "server" || m["data"].(map[string]any)["round"] != 1.0 || m["seq"] == nil {
			t.Fatalf("server message %v", m)
		}
	}
	if st, m := apiJSON(t, "POST", api+code+"/send", map[string]any{"data": "psst", "to": "carol"}); st != 200 {
		t.Fatalf("send to carol: %d %v", st, m)
	}
	if m := cc.Expect("message"); m["data"] != "psst" {
		t.Fatalf("carol got %v", m)
	}
	for _, tc := range []struct {
		body map[string]any
		want int
	}{
		{map[string]any{"data": 1, "to": "nobody"}, 404},
	} {
		if st, m := apiJSON(t, "POST", api+code+"/send", tc.body); st != tc.want {
			t.Fatalf("send %v: %d %v, want %d", tc.body, st, m, tc.want)
		}
	}

	// Kick carol (on A) through B.
	if st, m := apiJSON(t, "POST", api+code+"/kick", map[string]any{"clientId": "carol", "reason": "cheating"}); st != 200 && st != 204 {
		t.Fatalf("kick: %d %v", st, m)
	}
	cc.ExpectClose(4003)
	for _, c := range []*testutil.Client{ca, cb} {
		if m := c.Expect("peer_left"); m.Str("clientId") != "carol" {
			t.Fatalf("after the kick: %v", m)
		}
	}
	if st, _ := apiJSON(t, "POST", api+code+"/kick", map[string]any{"clientId": "carol"}); st != 404 {
		t.Fatalf("kicking her again: %d, want 404", st)
	}
	_, m := apiJSON(t, "GET", api+code, nil)
	if cl, _ := m["clients"].([]any); len(cl) != 2 {
		t.Fatalf("detail after the kick: %v", m)
	}

	// Close through B: both nodes' members get 4004; the room is gone.
	if st, m := apiJSON(t, "DELETE", api+code, nil); st != 200 {
		t.Fatalf("close: %d %v", st, m)
	}
	ca.ExpectClose(4004)
	cb.ExpectClose(4004)
	if st, _ := apiJSON(t, "GET", api+code, nil); st != 404 {
		t.Fatalf("closed room: %d", st)
	}
}

// The same for party-v2: a send from "server", kicking the host (on A)
// starts the host grace for the guest (on B), close ends both.
func TestPartyV2APIAcrossNodes(t *testing.T) {
	ns := startNATS(t)
	a := node(t, ns.url, "a", nil)
	b := node(t, ns.url, "b", nil)
	api := testutil.HTTPURL(b, "/api/rooms/")
	h := partyV2(t, a)
	h.Send(M{"type": "create", "clientId": "host", "maxClients": 4})
	code := h.Expect("created").Str("room")
	g, _ := v2Join(t, b, code, "guest")
	h.Expect("peer_joined")
	if st, m := apiJSON(t, "POST", api+code+"/send?dialect=party-v2", map[string]any{"data": 7}); st != 200 {
		t.Fatalf("send: %d %v", st, m)
	}
	for _, c := range []*testutil.Client{h, g} {
		if raw := v2Raw(t, c); raw != `{"type":"message","from":"server","data":7}` {
			t.Fatalf("server message %s", raw)
		}
	}
	if st, m := apiJSON(t, "POST", api+code+"/kick?dialect=party-v2", map[string]any{"clientId": "host", "reason": "bye"}); st != 200 && st != 204 {
		t.Fatalf("kick: %d %v", st, m)
	}
	h.ExpectClose(4003)
	if raw := v2Raw(t, g); raw != `{"type":"peer_left","index":0}` {
		t.Fatalf("guest got %s", raw)
	}
	if st, m := apiJSON(t, "DELETE", api+code+"?dialect=party-v2", nil); st != 200 {
		t.Fatalf("close: %d %v", st, m)
	}
	g.ExpectClose(4004)
}
