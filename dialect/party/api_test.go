package party_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/internal/testutil"
	"partyline/server"
)

// api calls the rooms API of e's server with body (nil: none) and returns
// the status and the decoded JSON answer.
func (e *env) api(method, path string, body any) (int, map[string]any) {
	e.t.Helper()
	return apiCall(e.t, testutil.HTTPURL(e.srv, path), method, "", body)
}

func apiCall(t *testing.T, url, method, key string, body any) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, url, rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: %d, body %q is not a JSON object", method, url, resp.StatusCode, raw)
	}
	if resp.StatusCode >= 400 && m["error"] == nil {
		t.Fatalf("%s %s: %d without an error text: %s", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

// apiCreate creates a room through the API and returns its code.
func (e *env) apiCreate(body map[string]any) string {
	e.t.Helper()
	st, m := e.api("POST", "/api/rooms", body)
	if st != http.StatusCreated {
		e.t.Fatalf("POST /api/rooms %v: %d %v", body, st, m)
	}
	return m["code"].(string)
}

// expectCloseWith reads until c closes and checks the code and reason.
func expectCloseWith(t *testing.T, c *testutil.Client, code int, reason string) {
	t.Helper()
	for {
		c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, b, err := c.Conn.ReadMessage()
		if err == nil {
			t.Logf("message before close: %s", b)
			continue
		}
		ce, ok := err.(*websocket.CloseError)
		if !ok || ce.Code != code || ce.Text != reason {
			t.Fatalf("closed with %v, want %d %q", err, code, reason)
		}
		return
	}
}

func TestAPICreateJoinDetail(t *testing.T) {
	e := start(t, nil)
	code := e.apiCreate(map[string]any{"maxClients": 3, "public": true, "metadata": map[string]any{"mode": "ctf"}})
	st, m := e.api("GET", "/api/rooms/"+strings.ToLower(code), nil)
	if st != 200 || m["room"] != code || m["code"] != code || m["members"] != 0.0 || m["maxClients"] != 3.0 || m["public"] != true ||
		m["metadata"].(map[string]any)["mode"] != "ctf" || m["dialect"] != "party" {
		t.Fatalf("GET empty room: %d %v", st, m)
	}
	a, j := e.join(code, "a")
	if got := clients(t, j); !slices.Equal(got, []string{"a"}) {
		t.Fatalf("the first joiner of an API room sees %v", got)
	}
	a.Send(map[string]any{"type": "set_state", "state": map[string]any{"turn": 1}})
	a.Expect("state")
	b, _ := e.join(code, "b", a)
	_ = b
	st, m = e.api("GET", "/api/rooms/"+code, nil)
	cl, _ := m["clients"].([]any)
	if st != 200 || m["members"] != 2.0 || len(cl) != 2 || cl[0].(map[string]any)["clientId"] != "a" || cl[1].(map[string]any)["clientId"] != "b" ||
		m["seq"] != 1.0 || m["epoch"] == "" || m["stateBytes"].(float64) < float64(len(`{"turn":1}`)) {
		t.Fatalf("GET room with members: %d %v", st, m)
	}
}

func TestAPIEmptyRoomTTL(t *testing.T) {
	e := start(t, func(c *server.Config) { c.Party.EmptyRoomTTL = 300 * time.Millisecond })
	joined := e.apiCreate(nil)
	a, _ := e.join(joined, "a")
	probe := e.apiCreate(nil) // created after the join: once it is gone, joined's TTL has passed too
	eventually(t, "the unjoined room to go", func() bool {
		st, _ := e.api("GET", "/api/rooms/"+probe, nil)
		return st == http.StatusNotFound
	})
	if st, m := e.api("GET", "/api/rooms/"+joined, nil); st != 200 || m["members"] != 1.0 {
		t.Fatalf("a joined room outlived its TTL: %d %v", st, m)
	}
	c := e.dial()
	c.Send(map[string]any{"type": "join", "clientId": "x", "room": probe})
	expectExact(t, c, "Room not found")
	a.Send(map[string]any{"type": "leave"})
	eventually(t, "the emptied room to go", func() bool {
		st, _ := e.api("GET", "/api/rooms/"+joined, nil)
		return st == http.StatusNotFound
	})
}

func TestAPISend(t *testing.T) {
	e := start(t, func(c *server.Config) { c.Party.SeatGrace = time.Minute })
	a, code, _ := e.create("a", nil)
	b, _ := e.join(code, "b", a)
	c, _ := e.join(code, "c", a, b)

	st, m := e.api("POST", "/api/rooms/"+code+"/send", map[string]any{"data": map[string]any{"round": 2}})
	if st != 200 || m["delivered"] != 3.0 {
		t.Fatalf("send to all: %d %v", st, m)
	}
	for _, x := range []*testutil.Client{a, b, c} {
		got := x.Expect("message")
		if got.Str("from") != "server" || got["data"].(map[string]any)["round"] != 2.0 || got["seq"] != 1.0 {
			t.Fatalf("message %v", got)
		}
	}
	if st, m := e.api("POST", "/api/rooms/"+code+"/send", map[string]any{"data": "psst", "to": "b"}); st != 200 || m["delivered"] != 1.0 {
		t.Fatalf("send to b: %d %v", st, m)
	}
	if got := b.Expect("message"); got["data"] != "psst" || got["seq"] != 2.0 {
		t.Fatalf("b got %v", got)
	}
	a.Send(map[string]any{"type": "send", "data": "next"})
	if got := c.Expect("message"); got["data"] != "next" || got["seq"] != 3.0 { // c never saw seq 2
		t.Fatalf("c got %v", got)
	}
	b.Expect("message")

	c.Conn.Close() // c's seat is kept, away
	a.Expect("peer_away")
	b.Expect("peer_away")
	for _, tc := range []struct {
		name, path string
		body       any
		status     int
		text       string
	}{
		{"unknown room", "/api/rooms/ZZZZ/send", map[string]any{"data": 1}, 404, "room not found"},
		{"unknown target", "/api/rooms/" + code + "/send", map[string]any{"data": 1, "to": "nobody"}, 404, "client not found"},
		{"away target", "/api/rooms/" + code + "/send", map[string]any{"data": 1, "to": "c"}, 409, "away"},
		{"no data", "/api/rooms/" + code + "/send", map[string]any{"to": "b"}, 422, "needs data"},
		{"not JSON", "/api/rooms/" + code + "/send", `{"data":`, 422, "invalid JSON"},
		{"too large", "/api/rooms/" + code + "/send", map[string]any{"data": strings.Repeat("x", 64<<10)}, 413, "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, m := apiCall(t, testutil.HTTPURL(e.srv, tc.path), "POST", "", tc.body)
			if st != tc.status || !strings.Contains(m["error"].(string), tc.text) {
				t.Fatalf("%d %v, want %d %q", st, m, tc.status, tc.text)
			}
		})
	}
	a.ExpectSilence(50 * time.Millisecond)
}

func TestAPIKick(t *testing.T) {
	for _, grace := range []time.Duration{0, time.Minute} {
		t.Run(fmt.Sprint("seat grace ", grace), func(t *testing.T) {
			e := start(t, func(c *server.Config) { c.Party.SeatGrace = grace })
			a, code, _ := e.create("a", nil)
			b, _ := e.join(code, "b", a)
			c, _ := e.join(code, "c", a, b)
			if st, m := e.api("POST", "/api/rooms/"+code+"/kick", map[string]any{"clientId": "b", "reason": "cheating"}); st != 200 || m["kicked"] != "b" {
				t.Fatalf("kick: %d %v", st, m)
			}
			expectCloseWith(t, b, 4003, "cheating")
			for _, x := range []*testutil.Client{a, c} {
				if m := x.Expect("peer_left"); m.Str("clientId") != "b" {
					t.Fatalf("peer_left %v", m)
				}
			}
			for _, tc := range []struct {
				body   any
				status int
			}{
				{map[string]any{"clientId": "b"}, 404},
				{map[string]any{"reason": "x"}, 422},
				{map[string]any{"clientId": "a", "reason": strings.Repeat("r", 124)}, 422},
			} {
				if st, m := e.api("POST", "/api/rooms/"+code+"/kick", tc.body); st != tc.status {
					t.Fatalf("kick %v: %d %v, want %d", tc.body, st, m, tc.status)
				}
			}
			if _, m := e.api("GET", "/api/rooms/"+code, nil); m["members"] != 2.0 {
				t.Fatalf("after the kick: %v", m)
			}
			a.ExpectSilence(50 * time.Millisecond) // no peer_away, no second peer_left
			c.ExpectSilence(10 * time.Millisecond)
		})
	}
}

func TestAPIClose(t *testing.T) {
	e := start(t, nil)
	a, code, _ := e.create("a", nil)
	b, _ := e.join(code, "b", a)
	if st, m := e.api("DELETE", "/api/rooms/"+code, nil); st != 200 || m["members"] != 2.0 {
		t.Fatalf("DELETE: %d %v", st, m)
	}
	expectCloseWith(t, a, 4004, "room closed")
	expectCloseWith(t, b, 4004, "room closed")
	if st, _ := e.api("GET", "/api/rooms/"+code, nil); st != 404 {
		t.Fatalf("GET a closed room: %d", st)
	}
	if st, _ := e.api("DELETE", "/api/rooms/"+code, nil); st != 404 {
		t.Fatalf("DELETE a closed room: %d", st)
	}
	c := e.dial()
	c.Send(map[string]any{"type": "join", "clientId": "a", "room": code})
	expectExact(t, c, "Room not found")
}

func TestAPIReservedClientID(t *testing.T) {
	e := start(t, nil)
	_, code, _ := e.create("a", nil)
	for _, req := range []map[string]any{
		{"type": "create", "clientId": "server"},
		{"type": "join", "clientId": "server", "room": code},
	} {
		c := e.dial()
		c.Send(req)
		expectError(t, c, `"server" is reserved`)
	}
}

func TestAPIErrors(t *testing.T) {
	e := start(t, func(c *server.Config) { c.APIKey = "sekret"; c.Party.MaxClients = 50 })
	url := func(p string) string { return testutil.HTTPURL(e.srv, p) }
	for _, tc := range []struct {
		name, method, path, key string
		body                    any
		status                  int
	}{
		{"no key", "GET", "/api/rooms", "", nil, 401},
		{"wrong key", "POST", "/api/rooms", "nope", map[string]any{}, 403},
		{"list", "GET", "/api/rooms", "sekret", nil, 200},
		{"bad limit", "GET", "/api/rooms?limit=0", "sekret", nil, 422},
		{"limit too high", "GET", "/api/rooms?limit=1001", "sekret", nil, 422},
		{"bad bool", "GET", "/api/rooms?public=yes", "sekret", nil, 422},
		{"bad cursor", "GET", "/api/rooms?cursor=%25%25", "sekret", nil, 422},
		{"unknown dialect", "GET", "/api/rooms?dialect=chat", "sekret", nil, 422},
		{"prefix at the limit", "GET", "/api/rooms?prefix=" + strings.Repeat("A", 64), "sekret", nil, 200},
		{"prefix too long", "GET", "/api/rooms?prefix=" + strings.Repeat("A", 65), "sekret", nil, 422},
		{"prefix not UTF-8", "GET", "/api/rooms?prefix=%ff", "sekret", nil, 422},
		{"maxClients over the cap", "POST", "/api/rooms", "sekret", map[string]any{"maxClients": 51}, 422},
		{"maxClients not an integer", "POST", "/api/rooms", "sekret", map[string]any{"maxClients": 2.5}, 422},
		{"metadata too large", "POST", "/api/rooms", "sekret", map[string]any{"metadata": strings.Repeat("m", 1100)}, 413},
		{"body too large", "POST", "/api/rooms", "sekret", `{"metadata":"` + strings.Repeat("m", 70<<10) + `"}`, 413},
		{"create", "POST", "/api/rooms", "sekret", map[string]any{"maxClients": 50}, 201},
		{"no room", "GET", "/api/rooms/QQQQ", "sekret", nil, 404},
		{"kick in no room", "POST", "/api/rooms/QQQQ/kick", "sekret", map[string]any{"clientId": "a"}, 404},
		{"close no room", "DELETE", "/api/rooms/QQQQ", "sekret", nil, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, m := apiCall(t, url(tc.path), tc.method, tc.key, tc.body); st != tc.status {
				t.Fatalf("%d %v, want %d", st, m, tc.status)
			}
		})
	}
}

func TestAPIListPaging(t *testing.T) {
	const rooms = 10_000
	e := start(t, func(c *server.Config) { c.Party.EmptyRoomTTL = time.Hour; c.Party.MaxRooms = 2 * rooms })
	want := make([]string, 0, rooms+2)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < rooms/8; i++ {
				st, m := apiCall(t, testutil.HTTPURL(e.srv, "/api/rooms"), "POST", "", map[string]any{"maxClients": 4})
				if st != 201 {
					t.Errorf("create %d: %d %v", i, st, m)
					return
				}
				mu.Lock()
				want = append(want, m["code"].(string))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	// Two rooms made by clients: one public with metadata and full, one public with space.
	full, fullCode, _ := e.create("f", map[string]any{"maxClients": 1, "public": true, "metadata": map[string]any{"map": "dust"}})
	_ = full
	open, openCode, _ := e.create("o", map[string]any{"public": true})
	_ = open
	want = append(want, fullCode, openCode)
	slices.Sort(want)

	walk := func(query string, limit int) []map[string]any {
		t.Helper()
		var got []map[string]any
		cursor := ""
		for pages := 0; ; pages++ {
			st, m := e.api("GET", fmt.Sprintf("/api/rooms?limit=%d&cursor=%s%s", limit, cursor, query), nil)
			if st != 200 {
				t.Fatalf("page %d: %d %v", pages, st, m)
			}
			list, _ := m["rooms"].([]any)
			if len(list) > limit {
				t.Fatalf("page of %d rooms, limit %d", len(list), limit)
			}
			for _, r := range list {
				got = append(got, r.(map[string]any))
			}
			next, _ := m["nextCursor"].(string)
			if next == "" {
				return got
			}
			cursor = next
		}
	}
	for _, limit := range []int{1000, 137} {
		got := walk("", limit)
		codes := make([]string, len(got))
		for i, r := range got {
			codes[i] = r["code"].(string)
		}
		if !slices.Equal(codes, want) {
			t.Fatalf("limit %d: %d rooms listed, want %d, each once in code order", limit, len(codes), len(want))
		}
	}
	pub := walk("&public=true", 1)
	if len(pub) != 2 || pub[0]["code"] != min(fullCode, openCode) {
		t.Fatalf("public rooms: %v", pub)
	}
	spaced := walk("&public=true&has_space=true", 10)
	if len(spaced) != 1 || spaced[0]["code"] != openCode || spaced[0]["members"] != 1.0 {
		t.Fatalf("public rooms with space: %v", spaced)
	}
	if n := len(walk("&has_space=true", 1000)); n != rooms+1 {
		t.Fatalf("rooms with space: %d, want %d", n, rooms+1)
	}
	for _, r := range pub {
		if r["code"] == fullCode && r["metadata"].(map[string]any)["map"] != "dust" {
			t.Fatalf("metadata not listed: %v", r)
		}
	}
}

// TestAPIListPrefix: prefix= keeps the codes that start with it, in any
// case, across pages and with the other filters.
func TestAPIListPrefix(t *testing.T) {
	e := start(t, func(c *server.Config) { c.Party.EmptyRoomTTL = time.Hour })
	var all []string
	public := map[string]bool{}
	for i := 0; i < 60; i++ {
		code := e.apiCreate(map[string]any{"maxClients": 2, "public": i%2 == 0})
		all, public[code] = append(all, code), i%2 == 0
	}
	slices.Sort(all)
	list := func(query string) []string {
		var got []string
		cursor := ""
		for {
			st, m := e.api("GET", "/api/rooms?limit=3&cursor="+cursor+query, nil)
			if st != 200 {
				t.Fatalf("%s: %d %v", query, st, m)
			}
			for _, r := range m["rooms"].([]any) {
				got = append(got, r.(map[string]any)["code"].(string))
			}
			if cursor, _ = m["nextCursor"].(string); cursor == "" {
				return got
			}
		}
	}
	starting := func(p string) []string {
		var w []string
		for _, c := range all {
			if strings.HasPrefix(c, p) {
				w = append(w, c)
			}
		}
		return w
	}
	for _, tc := range []struct{ prefix, query string }{
		{"", "&prefix="},
		{all[0][:1], "&prefix=" + all[0][:1]},
		{all[30][:1], "&prefix=" + strings.ToLower(all[30][:1])},
		{all[59][:2], "&prefix=" + all[59][:2]},
		{all[7], "&prefix=" + strings.ToLower(all[7])},
		{"Q1", "&prefix=Q1"}, // 1 is not a code letter
	} {
		if got, want := list(tc.query), starting(tc.prefix); !slices.Equal(got, want) {
			t.Errorf("%s: %v, want %v", tc.query, got, want)
		}
	}
	// With public=true: the public rooms of the prefix only.
	p := all[0][:1]
	want := slices.DeleteFunc(starting(p), func(c string) bool { return !public[c] })
	if got := list("&public=true&prefix=" + p); !slices.Equal(got, want) {
		t.Errorf("public=true&prefix=%s: %v, want %v", p, got, want)
	}
}

func TestSetMetadata(t *testing.T) {
	e := start(t, nil)
	a, code, _ := e.create("a", map[string]any{"metadata": map[string]any{"v": 1}})
	b, _ := e.join(code, "b", a)
	b.Send(map[string]any{"type": "set_metadata", "public": true, "metadata": map[string]any{"v": 2}})
	for _, x := range []*testutil.Client{a, b} {
		if m := x.Expect("metadata"); m["public"] != true || m["metadata"].(map[string]any)["v"] != 2.0 {
			t.Fatalf("metadata frame %v", m)
		}
	}
	if _, m := e.api("GET", "/api/rooms?public=true", nil); len(m["rooms"].([]any)) != 1 {
		t.Fatalf("listing after set_metadata: %v", m)
	}
	for _, tc := range []struct {
		req  map[string]any
		want string
	}{
		{map[string]any{"type": "set_metadata"}, "needs metadata or public"},
		{map[string]any{"type": "set_metadata", "public": "yes"}, "public must be true or false"},
		{map[string]any{"type": "set_metadata", "metadata": strings.Repeat("x", 1023)}, "metadata too large"},
	} {
		a.Send(tc.req)
		expectError(t, a, tc.want)
	}
	c := e.dial()
	c.Send(map[string]any{"type": "set_metadata", "public": true})
	expectExact(t, c, "Not in a room")
	c.Send(map[string]any{"type": "create", "clientId": "c", "metadata": strings.Repeat("x", 1100)})
	expectError(t, c, "metadata too large")
	a.Send(map[string]any{"type": "set_metadata", "metadata": nil, "public": false})
	if m := b.Expect("metadata"); m["public"] != false || m["metadata"] != nil {
		t.Fatalf("cleared metadata frame %v", m)
	}
	a.Expect("metadata")
}

func TestAPIPartyV2(t *testing.T) {
	e := startV2(t, nil)
	api := func(method, path string, body any) (int, map[string]any) {
		t.Helper()
		return apiCall(t, testutil.HTTPURL(e.srv, path), method, "", body)
	}
	st, m := api("POST", "/api/rooms", map[string]any{"dialect": "party-v2", "maxClients": 2, "public": true})
	if st != 201 || m["dialect"] != "party-v2" || m["maxClients"] != 2.0 {
		t.Fatalf("create: %d %v", st, m)
	}
	code := m["code"].(string)
	host, j := e.join(code, "h")
	if j["index"] != 0.0 {
		t.Fatalf("the first joiner of an API room is not the host: %v", j)
	}
	g, _ := e.join(code, "g")
	host.Expect("peer_joined")
	if _, m := api("GET", "/api/rooms?dialect=party-v2&has_space=true", nil); len(m["rooms"].([]any)) != 0 {
		t.Fatalf("a full room listed with space: %v", m)
	}
	st, m = api("GET", "/api/rooms/"+code, nil) // found without ?dialect=
	if cl := m["clients"].([]any); st != 200 || len(cl) != 2 || cl[1].(map[string]any)["index"] != 1.0 {
		t.Fatalf("GET: %d %v", st, m)
	}
	if st, _ := api("GET", "/api/rooms/"+code+"?dialect=party", nil); st != 404 {
		t.Fatalf("GET in the wrong dialect: %d", st)
	}
	if st, m := api("POST", "/api/rooms/"+code+"/send", map[string]any{"data": []int{1}, "to": "g"}); st != 200 || m["delivered"] != 1.0 {
		t.Fatalf("send: %d %v", st, m)
	}
	if m := g.Expect("message"); m["from"] != "server" {
		t.Fatalf("message %v", m)
	}
	if st, _ := api("POST", "/api/rooms/"+code+"/kick", map[string]any{"clientId": "g", "reason": "afk"}); st != 200 {
		t.Fatalf("kick: %d", st)
	}
	expectCloseWith(t, g, 4003, "afk")
	if m := host.Expect("peer_left"); m["index"] != 1.0 {
		t.Fatalf("peer_left %v", m)
	}
	g2, _ := e.join(code, "g") // the seat is gone: a new slot
	if m := host.Expect("peer_joined"); m["index"] != 2.0 {
		t.Fatalf("rejoin after a kick: %v", m)
	}
	if st, _ := api("DELETE", "/api/rooms/"+code, nil); st != 200 {
		t.Fatalf("DELETE: %d", st)
	}
	expectCloseWith(t, host, 4004, "room closed")
	expectCloseWith(t, g2, 4004, "room closed")
}
