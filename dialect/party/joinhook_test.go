package party_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"partyline/internal/security"
	"partyline/internal/testutil"
	"partyline/server"
)

// hookReq is the body the join hook receives.
type hookReq struct {
	ClientID   string            `json:"clientId"`
	Room       *string           `json:"room"`
	Action     string            `json:"action"`
	Dialect    string            `json:"dialect"`
	RemoteAddr string            `json:"remoteAddr"`
	Query      map[string]string `json:"query"`
	Headers    map[string]string `json:"headers"`
}

// hookAnswer is what the test's hook answers: a status and body after
// an optional wait (ended early when the request is cancelled); hold,
// if not nil, is waited for first.
type hookAnswer struct {
	status int
	body   string
	delay  time.Duration
	hold   chan struct{}
}

// hookServer is a real HTTP join hook. answer decides per request; every
// request is recorded, and seen receives each one as it arrives.
type hookServer struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(hookReq) hookAnswer
	seen   chan hookReq
	gone   chan string // clientIds of requests whose context ended before the answer

	mu   sync.Mutex
	reqs []hookReq
}

func newHookServer(t *testing.T, answer func(hookReq) hookAnswer) *hookServer {
	h := &hookServer{t: t, answer: answer, seen: make(chan hookReq, 100), gone: make(chan string, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var q hookReq
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.Unmarshal(b, &q) != nil {
			t.Errorf("hook got %s %q %q", r.Method, r.Header.Get("Content-Type"), b)
			w.WriteHeader(500)
			return
		}
		h.mu.Lock()
		h.reqs = append(h.reqs, q)
		h.mu.Unlock()
		h.seen <- q
		a := h.answer(q)
		if a.hold != nil {
			select {
			case <-a.hold:
			case <-r.Context().Done():
				h.gone <- q.ClientID
				return
			}
		}
		if a.delay > 0 {
			select {
			case <-time.After(a.delay):
			case <-r.Context().Done():
				h.gone <- q.ClientID
				return
			}
		}
		w.WriteHeader(a.status)
		_, _ = io.WriteString(w, a.body)
	}))
	t.Cleanup(h.srv.Close)
	return h
}

// requests returns the requests so far.
func (h *hookServer) requests() []hookReq {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookReq(nil), h.reqs...)
}

// next waits for the hook's next request.
func (h *hookServer) next() hookReq {
	h.t.Helper()
	select {
	case q := <-h.seen:
		return q
	case <-time.After(10 * time.Second):
		h.t.Fatal("the hook got no request")
		return hookReq{}
	}
}

// approveAll answers 200 with {"metadata": {"name": clientId}} to
// clientIds starting with "m-", 204 to the others.
func approveAll(q hookReq) hookAnswer {
	if strings.HasPrefix(q.ClientID, "m-") {
		return hookAnswer{status: 200, body: `{"metadata": {"name": "` + q.ClientID + `"}}`}
	}
	return hookAnswer{status: 204}
}

// startHooked starts a server whose party dialects call h.
func startHooked(t *testing.T, h *hookServer, mutate func(*server.Config)) *env {
	return start(t, func(c *server.Config) {
		c.Party.AuthURL = h.srv.URL + "/join"
		if mutate != nil {
			mutate(c)
		}
	})
}

func TestJoinHookApproves(t *testing.T) {
	h := newHookServer(t, approveAll)
	e := startHooked(t, h, nil)
	alice, code, _ := e.create("m-alice", nil)
	if m := h.next(); m.Action != "create" || m.Room != nil || m.ClientID != "m-alice" || m.Dialect != "party" {
		t.Fatalf("create's hook request %+v", m)
	}

	bob, joined := e.join(code, "m-bob") // peer_joined checked below
	if m := h.next(); m.Action != "join" || m.Room == nil || *m.Room != code || m.ClientID != "m-bob" {
		t.Fatalf("join's hook request %+v", m)
	}
	want := map[string]any{"m-alice": map[string]any{"name": "m-alice"}, "m-bob": map[string]any{"name": "m-bob"}}
	if !reflect.DeepEqual(joined["metadata"], want) || !reflect.DeepEqual(clients(t, joined), []string{"m-alice", "m-bob"}) {
		t.Fatalf("joined %v, want metadata %v", joined, want)
	}
	p := alice.Expect("peer_joined")
	if p.Str("clientId") != "m-bob" || !reflect.DeepEqual(p["metadata"], map[string]any{"name": "m-bob"}) {
		t.Fatalf("peer_joined %v", p)
	}

	// Approved without metadata: no field in peer_joined, no entry in joined.
	carol, joined := e.join(code, "carol")
	if _, has := joined["metadata"].(map[string]any)["carol"]; has {
		t.Fatalf("joined lists metadata for carol: %v", joined)
	}
	for _, c := range []*testutil.Client{alice, bob} {
		if p := c.Expect("peer_joined"); p.Str("clientId") != "carol" || p["metadata"] != nil {
			t.Fatalf("peer_joined %v", p)
		}
	}

	// The rooms API shows it per member.
	resp, err := http.Get(testutil.HTTPURL(e.srv, "/api/rooms/"+code))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var detail struct {
		Clients []struct {
			ClientID string         `json:"clientId"`
			Metadata map[string]any `json:"metadata"`
		} `json:"clients"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&detail); err != nil {
		t.Fatal(err)
	}
	if len(detail.Clients) != 3 || detail.Clients[1].Metadata["name"] != "m-bob" || detail.Clients[2].Metadata != nil {
		t.Fatalf("room detail %+v", detail)
	}

	// Messages work as without a hook.
	carol.Send(map[string]any{"type": "send", "data": "hi"})
	if m := alice.Expect("message"); m.Str("from") != "carol" {
		t.Fatalf("message %v", m)
	}
}

func TestJoinHookRequestBody(t *testing.T) {
	h := newHookServer(t, approveAll)
	e := startHooked(t, h, nil)
	hdr := http.Header{"Origin": {"https://game.example"}, "User-Agent": {"game-client/1.0"},
		"Authorization": {"Bearer abc"}, "Cookie": {"session=s1"}}
	c, err := testutil.TryDial(t, e.url+"?token=t%20ok&team=red&team=blue", hdr)
	if err != nil {
		t.Fatal(err)
	}
	c.Send(map[string]any{"type": "create", "clientId": "al\"ice"})
	code := c.Expect("created").Str("room")
	q := h.next()
	wantHdr := map[string]string{"Origin": "https://game.example", "User-Agent": "game-client/1.0",
		"Authorization": "Bearer abc", "Cookie": "session=s1"}
	if q.ClientID != "al\"ice" || q.Room != nil || q.Action != "create" || q.Dialect != "party" ||
		!strings.HasPrefix(q.RemoteAddr, "127.0.0.1:") ||
		!reflect.DeepEqual(q.Query, map[string]string{"token": "t ok", "team": "red"}) || !reflect.DeepEqual(q.Headers, wantHdr) {
		t.Fatalf("hook request %+v", q)
	}

	// A join names the room as the server reads it (upper case); without
	// a query the object is empty, and absent headers are left out.
	e.join(strings.ToLower(code), "bob", c)
	q = h.next()
	if q.Room == nil || *q.Room != code || q.Action != "join" || q.Query == nil || len(q.Query) != 0 ||
		q.Headers["Origin"] != "" || q.Headers["Authorization"] != "" || q.Headers["Cookie"] != "" {
		t.Fatalf("join's hook request %+v", q)
	}
}

// TestJoinHookRefusals: 4xx refuses with the answer's error text (or
// "join refused"); a timeout, 5xx, a redirect or an unreadable approval
// refuses with "authorization unavailable". The connection stays open,
// outside any room, and the room never hears of it.
func TestJoinHookRefusals(t *testing.T) {
	answers := map[string]hookAnswer{
		"banned":    {status: 403, body: `{"error": "you are banned"}`},
		"plain4xx":  {status: 401, body: `nope`},
		"empty4xx":  {status: 404, body: `{"error": ""}`},
		"down5xx":   {status: 503, body: `{"error": "down"}`},
		"redirect":  {status: 302},
		"garbage":   {status: 200, body: `{"metadata": `},
		"notobject": {status: 200, body: `["metadata"]`},
		"bigmeta":   {status: 200, body: `{"metadata": "` + strings.Repeat("x", 1100) + `"}`},
		"slow":      {status: 204, delay: time.Minute},
	}
	h := newHookServer(t, func(q hookReq) hookAnswer {
		if a, ok := answers[q.ClientID]; ok {
			return a
		}
		return hookAnswer{status: 204}
	})
	const timeout = 300 * time.Millisecond
	e := startHooked(t, h, func(c *server.Config) { c.Party.AuthTimeout = timeout })
	host, code, _ := e.create("host", nil)

	cases := []struct {
		id, want string
	}{
		{"banned", "you are banned"},
		{"plain4xx", "join refused"},
		{"empty4xx", "join refused"},
		{"down5xx", "authorization unavailable"},
		{"redirect", "authorization unavailable"},
		{"garbage", "authorization unavailable"},
		{"notobject", "authorization unavailable"},
		{"bigmeta", "authorization unavailable"},
		{"slow", "authorization unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.id, func(t *testing.T) {
			e := e.with(t)
			for _, action := range []string{"join", "create"} {
				c := e.dial()
				refusedBefore, unavailableBefore := security.Count("party_auth_refused"), security.Count("party_auth_unavailable")
				t0 := time.Now()
				c.Send(map[string]any{"type": action, "clientId": tc.id, "room": code})
				expectExact(t, c, tc.want)
				if took := time.Since(t0); tc.id == "slow" && took > timeout+3*time.Second {
					t.Fatalf("the timeout refusal took %v (timeout %v)", took, timeout)
				}
				if tc.want == "authorization unavailable" {
					if security.Count("party_auth_unavailable") == unavailableBefore {
						t.Fatal("party_auth_unavailable not counted")
					}
				} else if security.Count("party_auth_refused") == refusedBefore {
					t.Fatal("party_auth_refused not counted")
				}
				// Still open and in no room.
				c.Send(map[string]any{"type": "send", "data": 1})
				expectExact(t, c, "Not in a room")
			}
		})
	}
	host.ExpectSilence(100 * time.Millisecond)
	if _, ri := e.getRoom(code); ri.Members != 1 {
		t.Fatalf("room has %d members, want 1", ri.Members)
	}
	select {
	case id := <-h.gone: // the slow call was abandoned when it timed out
		if id != "slow" {
			t.Fatalf("request of %q cancelled", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the timed-out hook request was not cancelled")
	}
}

// TestJoinHookRefusalThrottled: refusals count as failed joins
// (--join-failures-per-minute).
func TestJoinHookRefusalThrottled(t *testing.T) {
	h := newHookServer(t, func(q hookReq) hookAnswer {
		if q.ClientID == "mallory" {
			return hookAnswer{status: 403, body: `{"error":"no"}`}
		}
		return hookAnswer{status: 204}
	})
	e := startHooked(t, h, func(c *server.Config) { c.Party.JoinFailuresPerMinute = 2 })
	_, code, _ := e.create("host", nil)
	c := e.dial()
	for i := 0; i < 2; i++ {
		c.Send(map[string]any{"type": "join", "clientId": "mallory", "room": code})
		expectExact(t, c, "no")
	}
	c.Send(map[string]any{"type": "join", "clientId": "mallory", "room": code})
	expectError(t, c, "too many failed joins")
	c.ExpectClose(1008)
}

// TestJoinHookPending: while the hook decides, the connection's later
// messages wait and are handled after it in order (a send after the
// join reaches the room; a second join is refused as already in a room);
// a room that filled up meanwhile refuses the approved join.
func TestJoinHookPending(t *testing.T) {
	holds := map[string]chan struct{}{"bob": make(chan struct{}), "dave": make(chan struct{})}
	h := newHookServer(t, func(q hookReq) hookAnswer {
		if q.Action == "join" {
			if ch, ok := holds[q.ClientID]; ok {
				return hookAnswer{status: 204, hold: ch}
			}
		}
		return hookAnswer{status: 204}
	})
	e := startHooked(t, h, nil)
	alice, code, _ := e.create("alice", map[string]any{"maxClients": 2})
	h.next()

	bob := e.dial()
	bob.Send(map[string]any{"type": "join", "clientId": "bob", "room": code})
	bob.Send(map[string]any{"type": "send", "data": "pipelined"})
	bob.Send(map[string]any{"type": "join", "clientId": "bob2", "room": code})
	if q := h.next(); q.ClientID != "bob" {
		t.Fatalf("hook request %+v", q)
	}
	close(holds["bob"])
	bob.Expect("joined")
	if m := alice.Expect("peer_joined"); m.Str("clientId") != "bob" {
		t.Fatalf("peer_joined %v", m)
	}
	if m := alice.Expect("message"); m.Str("from") != "bob" || m["data"] != "pipelined" {
		t.Fatalf("message %v", m)
	}
	expectExact(t, bob, "Already in a room") // the second join, checked before its hook call
	if n := len(h.requests()); n != 2 {
		t.Fatalf("the hook got %d requests, want 2 (create, bob's join)", n)
	}

	// The room fills up while dave's hook call runs: it is re-checked.
	bob.Send(map[string]any{"type": "leave"})
	alice.Expect("peer_left")
	dave := e.dial()
	dave.Send(map[string]any{"type": "join", "clientId": "dave", "room": code})
	if q := h.next(); q.ClientID != "dave" {
		t.Fatalf("hook request %+v", q)
	}
	e.join(code, "carol", alice)
	close(holds["dave"])
	expectExact(t, dave, "Room is full")
	alice.ExpectSilence(100 * time.Millisecond)
}

// TestJoinHookClientCloses: a connection that closes while its hook call
// runs leaves nothing behind; the call is abandoned.
func TestJoinHookClientCloses(t *testing.T) {
	hold := make(chan struct{})
	t.Cleanup(func() { close(hold) })
	h := newHookServer(t, func(q hookReq) hookAnswer {
		if q.ClientID == "bob" {
			return hookAnswer{status: 204, hold: hold}
		}
		return hookAnswer{status: 204}
	})
	e := startHooked(t, h, nil)
	alice, code, _ := e.create("alice", nil)
	h.next()
	bob := e.dial()
	bob.Send(map[string]any{"type": "join", "clientId": "bob", "room": code})
	bob.Send(map[string]any{"type": "send", "data": "held"})
	h.next()
	bob.Conn.Close()
	select {
	case id := <-h.gone:
		if id != "bob" {
			t.Fatalf("request of %q cancelled", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the closed connection's hook request was not cancelled")
	}
	e.waitConnections(1)
	alice.ExpectSilence(200 * time.Millisecond)
	if _, ri := e.getRoom(code); ri.Members != 1 {
		t.Fatalf("room has %d members, want 1", ri.Members)
	}
}

// TestJoinHookPoolFull: past --party-auth-concurrency calls and as many
// waiting, a create or join is refused at once, and counted. Four
// creates meet a pool of one worker and one queue slot while the hook
// holds every answer: whatever their order, two are refused before the
// hook answers and two are created after.
func TestJoinHookPoolFull(t *testing.T) {
	hold := make(chan struct{})
	h := newHookServer(t, func(q hookReq) hookAnswer { return hookAnswer{status: 204, hold: hold} })
	e := startHooked(t, h, func(c *server.Config) { c.Party.AuthConcurrency = 1 })
	before := security.Count("party_auth_busy")
	type reply struct {
		m   testutil.Msg
		err error
	}
	replies := make(chan reply, 4)
	for _, id := range []string{"a", "b", "c", "d"} {
		c := e.dial()
		c.Send(map[string]any{"type": "create", "clientId": id})
		go func() {
			m, err := c.TryRead(20 * time.Second)
			replies <- reply{m, err}
		}()
	}
	for i := 0; i < 2; i++ {
		r := <-replies
		if r.err != nil || r.m.Str("type") != "error" || r.m.Str("message") != "authorization unavailable" {
			t.Fatalf("reply before the hook answered: %v %v", r.m, r.err)
		}
	}
	if got := security.Count("party_auth_busy") - before; got < 2 {
		t.Fatalf("party_auth_busy counted %d, want at least 2", got)
	}
	close(hold)
	for i := 0; i < 2; i++ {
		if r := <-replies; r.err != nil || r.m.Str("type") != "created" {
			t.Fatalf("reply after the hook answered: %v %v", r.m, r.err)
		}
	}
}

// TestJoinHookReplacement: a reconnect with the same clientId goes
// through the hook too; a refused one leaves the old connection alone,
// an approved one replaces it with the new metadata.
func TestJoinHookReplacement(t *testing.T) {
	var mu sync.Mutex
	refuse := true
	h := newHookServer(t, func(q hookReq) hookAnswer {
		mu.Lock()
		defer mu.Unlock()
		if q.ClientID == "m-bob" && q.Headers["Authorization"] == "Bearer second" {
			if refuse {
				return hookAnswer{status: 403, body: `{"error":"second device not allowed"}`}
			}
			return hookAnswer{status: 200, body: `{"metadata":{"device":2}}`}
		}
		return approveAll(q)
	})
	e := startHooked(t, h, nil)
	alice, code, _ := e.create("alice", nil)
	bob, _ := e.join(code, "m-bob", alice)
	second, err := testutil.TryDial(t, e.url, http.Header{"Authorization": {"Bearer second"}})
	if err != nil {
		t.Fatal(err)
	}
	second.Send(map[string]any{"type": "join", "clientId": "m-bob", "room": code})
	expectExact(t, second, "second device not allowed")
	bob.Send(map[string]any{"type": "send", "data": "still here"})
	alice.Expect("message")

	mu.Lock()
	refuse = false
	mu.Unlock()
	second.Send(map[string]any{"type": "join", "clientId": "m-bob", "room": code})
	m := second.Expect("joined")
	if !reflect.DeepEqual(m["metadata"].(map[string]any)["m-bob"], map[string]any{"device": float64(2)}) {
		t.Fatalf("joined %v", m)
	}
	bob.ExpectClose(4000)
	resp, err := http.Get(testutil.HTTPURL(e.srv, "/api/rooms/"+code))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(b), `"metadata":{"device":2}`) {
		t.Fatalf("room detail %s", b)
	}
}

// TestJoinHookV2: party-v2 calls the hook too; joined carries the
// connected slots' metadata by index, peer_joined the joiner's.
func TestJoinHookV2(t *testing.T) {
	h := newHookServer(t, func(q hookReq) hookAnswer {
		if q.ClientID == "eve" {
			return hookAnswer{status: 403, body: `{"error":"eve is banned"}`}
		}
		return approveAll(q)
	})
	e := startV2(t, func(c *server.Config) { c.Party.AuthURL = h.srv.URL })
	host := e.dial()
	host.Send(`{"type":"create","clientId":"m-host","maxClients":4}`)
	code := host.Expect("created").Str("room")
	if q := h.next(); q.Dialect != "party-v2" || q.Action != "create" || q.Room != nil {
		t.Fatalf("hook request %+v", q)
	}
	guest := e.dial()
	guest.Send(`{"type":"join","clientId":"m-guest","room":"` + code + `"}`)
	m := guest.Expect("joined")
	want := map[string]any{"0": map[string]any{"name": "m-host"}, "1": map[string]any{"name": "m-guest"}}
	if !reflect.DeepEqual(m["metadata"], want) || m["index"] != float64(1) {
		t.Fatalf("joined %v, want metadata %v", m, want)
	}
	if q := h.next(); q.Room == nil || *q.Room != code || q.Action != "join" {
		t.Fatalf("hook request %+v", q)
	}
	p := host.Expect("peer_joined")
	if p["index"] != float64(1) || !reflect.DeepEqual(p["metadata"], map[string]any{"name": "m-guest"}) {
		t.Fatalf("peer_joined %v", p)
	}
	plain := e.dial()
	plain.Send(`{"type":"join","clientId":"plain","room":"` + code + `"}`)
	if m := plain.Expect("joined"); !reflect.DeepEqual(m["metadata"], want) {
		t.Fatalf("joined %v", m)
	}
	for _, c := range []*testutil.Client{host, guest} {
		if p := c.Expect("peer_joined"); p["index"] != float64(2) || p["metadata"] != nil {
			t.Fatalf("peer_joined %v", p)
		}
	}
	eve := e.dial()
	eve.Send(`{"type":"join","clientId":"eve","room":"` + code + `"}`)
	expectExact(t, eve, "eve is banned")
	host.ExpectSilence(100 * time.Millisecond)
}
