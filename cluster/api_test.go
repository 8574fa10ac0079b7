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
			for _, r := range m["rooms"].([]any) {
				got = append(got, r.(map[string]any)["code"].(string))
			}
			if cursor, _ = m["nextCursor"].(string); cursor == "" {
				break
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("listed %v, want %v", got, want)
		}
		if _, m := apiJSON(t, "GET", s+"/api/rooms?has_space=true", nil); len(m["rooms"].([]any)) != 3 {
			t.Fatalf("rooms with space: %v", m)
		}
		st, m := apiJSON(t, "GET", s+"/api/rooms/"+want[0], nil)
		if cl, _ := m["clients"].([]any); st != 200 || len(cl) != 1 || cl[0].(map[string]any)["clientId"] != "c" {
			t.Fatalf("detail: %d %v", st, m)
		}
		for _, tc := range []struct {
			method, path string
			body         any
		}{
			{"POST", "/api/rooms", map[string]any{}},
			{"POST", "/api/rooms/" + want[0] + "/send", map[string]any{"data": 1}},
			{"POST", "/api/rooms/" + want[0] + "/kick", map[string]any{"clientId": "c"}},
			{"DELETE", "/api/rooms/" + want[0], nil},
		} {
			if st, m := apiJSON(t, tc.method, s+tc.path, tc.body); st != http.StatusNotImplemented {
				t.Fatalf("%s %s: %d %v, want 501", tc.method, tc.path, st, m)
			}
		}
	}
}
