package cluster_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"partyline/internal/testutil"
	"partyline/server"
)

// joinHook is a real HTTP join hook: clientIds starting with "m-" are
// approved with {"metadata": {"name": clientId}}, "eve" is refused, the
// others approved without metadata. Each request's action, node and room
// are recorded.
func joinHook(t *testing.T) (url string, seen chan map[string]any) {
	seen = make(chan map[string]any, 64)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var q map[string]any
		if err := json.Unmarshal(b, &q); err != nil {
			t.Errorf("hook body %q: %v", b, err)
		}
		seen <- q
		id, _ := q["clientId"].(string)
		switch {
		case id == "eve":
			w.WriteHeader(403)
			_, _ = io.WriteString(w, `{"error":"eve is banned"}`)
		case strings.HasPrefix(id, "m-"):
			_, _ = io.WriteString(w, `{"metadata":{"name":"`+id+`"}}`)
		default:
			w.WriteHeader(204)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL, seen
}

// TestJoinHookAcrossNodes: with the hook on both nodes, a create on one
// and joins on the other go through it; the metadata reaches the other
// node's members in peer_joined, the joiner in joined (from the
// registry) and the room detail on either node.
func TestJoinHookAcrossNodes(t *testing.T) {
	url, seen := joinHook(t)
	ns := startNATS(t)
	hook := func(c *server.Config) { c.Party.AuthURL = url }
	a := node(t, ns.url, "a", hook)
	b := node(t, ns.url, "b", hook)

	t.Run("party", func(t *testing.T) {
		ca := party(t, a)
		code, _ := createRoom(t, ca, "m-alice", 0)
		if q := <-seen; q["action"] != "create" || q["room"] != nil {
			t.Fatalf("hook request %v", q)
		}
		cb := party(t, b)
		m := joinRoom(t, cb, "m-bob", code)
		if q := <-seen; q["action"] != "join" || q["room"] != code {
			t.Fatalf("hook request %v", q)
		}
		want := map[string]any{"m-alice": map[string]any{"name": "m-alice"}, "m-bob": map[string]any{"name": "m-bob"}}
		if !reflect.DeepEqual(m["metadata"], want) {
			t.Fatalf("joined %v, want metadata %v", m, want)
		}
		p := ca.Expect("peer_joined")
		if p.Str("clientId") != "m-bob" || !reflect.DeepEqual(p["metadata"], map[string]any{"name": "m-bob"}) {
			t.Fatalf("peer_joined on the other node %v", p)
		}
		ce := party(t, b)
		ce.Send(M{"type": "join", "clientId": "eve", "room": code})
		if e := ce.Expect("error"); e.Str("message") != "eve is banned" {
			t.Fatalf("eve got %v", e)
		}
		<-seen
		for _, s := range []*server.Server{a, b} {
			st, d := getJSON(t, testutil.HTTPURL(s, "/api/rooms/"+code))
			cl, _ := d["clients"].([]any)
			if st != 200 || len(cl) != 2 || !reflect.DeepEqual(cl[1].(map[string]any)["metadata"], map[string]any{"name": "m-bob"}) {
				t.Fatalf("room detail %d %v", st, d)
			}
		}
	})

	t.Run("party-v2", func(t *testing.T) {
		host := partyV2(t, a)
		host.Send(M{"type": "create", "clientId": "m-host", "maxClients": 4})
		code := host.Expect("created").Str("room")
		<-seen
		_, m := v2Join(t, b, code, "m-guest")
		<-seen
		want := map[string]any{"0": map[string]any{"name": "m-host"}, "1": map[string]any{"name": "m-guest"}}
		if !reflect.DeepEqual(m["metadata"], want) {
			t.Fatalf("joined %v, want metadata %v", m, want)
		}
		p := host.Expect("peer_joined")
		if v2Index(p) != 1 || !reflect.DeepEqual(p["metadata"], map[string]any{"name": "m-guest"}) {
			t.Fatalf("peer_joined on the other node %v", p)
		}
	})
}
