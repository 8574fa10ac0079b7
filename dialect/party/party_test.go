package party_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/dialect/party"
	"partyline/internal/testutil"
	"partyline/server"
)

func TestCreate(t *testing.T) {
	cases := []struct {
		name       string
		mutate     func(*server.Config)
		extra      map[string]any
		wantLen    int
		wantMax    int
		wantClient string
	}{
		{name: "defaults", wantLen: 4, wantMax: 1000},
		{name: "maxClients 4 (seed)", extra: map[string]any{"maxClients": 4}, wantLen: 4, wantMax: 4},
		{name: "maxClients 1", extra: map[string]any{"maxClients": 1}, wantLen: 4, wantMax: 1},
		{name: "maxClients at the limit", extra: map[string]any{"maxClients": 1000}, wantLen: 4, wantMax: 1000},
		{name: "maxClients null means the limit", extra: map[string]any{"maxClients": nil}, wantLen: 4, wantMax: 1000},
		{name: "room-code-length 6", mutate: func(c *server.Config) { c.Party.CodeLength = 6 }, wantLen: 6, wantMax: 1000},
		{name: "room-code-length 3", mutate: func(c *server.Config) { c.Party.CodeLength = 3 }, wantLen: 3, wantMax: 1000},
		{name: "party-max-clients 10 is the default", mutate: func(c *server.Config) { c.Party.MaxClients = 10 }, wantLen: 4, wantMax: 10},
		{name: "clientId of 128 bytes", extra: map[string]any{"clientId": strings.Repeat("x", 128)}, wantLen: 4, wantMax: 1000},
		{name: "clientId with escapes and unicode", extra: map[string]any{"clientId": "a\"b\\c\u00e9\U0001F600"}, wantLen: 4, wantMax: 1000},
		{name: "extra fields ignored", extra: map[string]any{"color": "red", "room": "ZZZZ"}, wantLen: 4, wantMax: 1000},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, tc.mutate)
			before := time.Now().Add(-time.Second)
			id := "creator"
			if s, ok := tc.extra["clientId"].(string); ok {
				id = s
			}
			extra := map[string]any{}
			for k, v := range tc.extra {
				extra[k] = v
			}
			delete(extra, "clientId")
			c, code, tok := e.create(id, extra)
			re := regexp.MustCompile(fmt.Sprintf("^[%s]{%d}$", party.Alphabet, tc.wantLen))
			if !re.MatchString(code) {
				t.Fatalf("room code %q does not match %s", code, re)
			}
			if len(tok) < 16 {
				t.Fatalf("token %q is too short to be unguessable", tok)
			}
			st, ri := e.getRoom(code)
			if st != http.StatusOK {
				t.Fatalf("GET room %s: %d", code, st)
			}
			if ri.Room != code || ri.Members != 1 || ri.MaxClients != tc.wantMax {
				t.Fatalf("room info %+v, want room %s, 1 member, maxClients %d", ri, code, tc.wantMax)
			}
			created, err := time.Parse(time.RFC3339Nano, ri.Created)
			if err != nil || created.Before(before) || created.After(time.Now().Add(time.Second)) {
				t.Fatalf("created %q (%v): not a recent ISO-8601 time", ri.Created, err)
			}
			if tc.wantMax == 1 {
				n := e.dial()
				n.Send(map[string]any{"type": "join", "clientId": "second", "room": code})
				expectExact(t, n, "Room is full")
				return
			}
			// A joiner sees the creator's clientId exactly as sent.
			_, j := e.join(strings.ToLower(code), "second", c)
			if got := clients(t, j); !slices.Equal(got, []string{id, "second"}) {
				t.Fatalf("clients %q, want [%q second]", got, id)
			}
		})
	}
}

// TestRoomCodes creates many rooms and checks every code's length, alphabet
// and uniqueness among live rooms.
func TestRoomCodes(t *testing.T) {
	for _, n := range []int{4, 5} {
		t.Run(fmt.Sprint("length ", n), func(t *testing.T) {
			t.Parallel()
			e := start(t, func(c *server.Config) { c.Party.CodeLength = n })
			re := regexp.MustCompile(fmt.Sprintf("^[%s]{%d}$", party.Alphabet, n))
			seen := map[string]bool{}
			for i := range 60 {
				c := e.dial()
				c.Send(map[string]any{"type": "create", "clientId": fmt.Sprint("c", i)})
				code := c.Expect("created").Str("room")
				if !re.MatchString(code) {
					t.Fatalf("room code %q does not match %s", code, re)
				}
				if strings.ContainsAny(code, "01OIL") {
					t.Fatalf("room code %q has an ambiguous character", code)
				}
				if seen[code] {
					t.Fatalf("room code %q handed out twice while the first room is live", code)
				}
				seen[code] = true
			}
		})
	}
}

func TestJoin(t *testing.T) {
	e := start(t, nil)
	a, code, atok := e.create("a", map[string]any{"maxClients": 4})
	b, jb := e.join(code, "b", a)
	if jb.Str("room") != code {
		t.Fatalf("joined room %q, want %q", jb.Str("room"), code)
	}
	if got := clients(t, jb); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("clients %q, want [a b]", got)
	}
	if tok := jb.Str("token"); tok == "" || tok == atok {
		t.Fatalf("joined token %q: want a fresh token (creator's is %q)", tok, atok)
	}
	_, jc := e.join(code, "c", a, b)
	if got := clients(t, jc); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Fatalf("clients %q, want [a b c]", got)
	}
	if st, ri := e.getRoom(code); st != 200 || ri.Members != 3 || ri.MaxClients != 4 {
		t.Fatalf("room info %d %+v, want 3 members of 4", st, ri)
	}
}

func TestJoinCodeIsCaseInsensitive(t *testing.T) {
	e := start(t, nil)
	a, code, _ := e.create("a", nil)
	variants := []string{strings.ToLower(code), code[:2] + strings.ToLower(code[2:]), code}
	var members []*testutil.Client
	members = append(members, a)
	for i, v := range variants {
		id := fmt.Sprint("p", i)
		c, j := e.join(v, id, members...)
		if j.Str("room") != code {
			t.Fatalf("join %q: joined room %q, want canonical %q", v, j.Str("room"), code)
		}
		members = append(members, c)
	}
	if _, ri := e.getRoom(strings.ToLower(code)); ri.Members != 4 {
		t.Fatalf("members %d, want 4", ri.Members)
	}
}

// relayed is a "message" as received, with data undecoded.
type relayed struct {
	Type string          `json:"type"`
	From string          `json:"from"`
	Data json.RawMessage `json:"data"`
}

func readRelayed(t *testing.T, c *testutil.Client) relayed {
	t.Helper()
	b := readRaw(t, c)
	var r relayed
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("message %q: %v", b, err)
	}
	if r.Type != "message" {
		t.Fatalf("got %s, want a message", b)
	}
	return r
}

func compact(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("compact %q: %v", b, err)
	}
	return buf.String()
}

func TestSendBroadcastAndTargeted(t *testing.T) {
	e := start(t, nil)
	a, code, _ := e.create("a", nil)
	b, _ := e.join(code, "b", a)
	c, _ := e.join(code, "c", a, b)

	// Broadcast: every other member, never the sender.
	a.Send(`{"type":"send","data":{"move":"left"}}`)
	for _, r := range []*testutil.Client{b, c} {
		m := readRelayed(t, r)
		if m.From != "a" || compact(t, m.Data) != `{"move":"left"}` {
			t.Fatalf("got from %q data %s", m.From, m.Data)
		}
	}
	a.Send(`{"type":"bogus"}`) // the sender's next message must be this error, not its own broadcast
	expectExact(t, a, "Unknown message type")

	// Targeted: only the target.
	b.Send(`{"type":"send","to":"c","data":"hello"}`)
	if m := readRelayed(t, c); m.From != "b" || string(m.Data) != `"hello"` {
		t.Fatalf("targeted: from %q data %s", m.From, m.Data)
	}
	// b then broadcasts a marker: a's next message must be the marker (the
	// targeted message was queued to c only), b's own next is its error.
	b.Send(`{"type":"send","data":"marker"}`)
	if m := readRelayed(t, a); string(m.Data) != `"marker"` {
		t.Fatalf("a got %s before the marker: the targeted message leaked", m.Data)
	}
	if m := readRelayed(t, c); string(m.Data) != `"marker"` {
		t.Fatalf("c got %s, want the marker", m.Data)
	}
	b.Send(`{"type":"bogus"}`)
	expectExact(t, b, "Unknown message type")

	// A message to oneself is allowed and reaches only oneself.
	c.Send(`{"type":"send","to":"c","data":1}`)
	if m := readRelayed(t, c); m.From != "c" || string(m.Data) != "1" {
		t.Fatalf("self-targeted: %+v", m)
	}
	// to: null is a broadcast.
	c.Send(`{"type":"send","to":null,"data":2}`)
	for _, r := range []*testutil.Client{a, b} {
		if m := readRelayed(t, r); m.From != "c" || string(m.Data) != "2" {
			t.Fatalf("to:null broadcast: %+v", m)
		}
	}
}

func TestSendDataKinds(t *testing.T) {
	e := start(t, nil)
	a, code, _ := e.create("a", nil)
	b, _ := e.join(code, "b", a)
	cases := []struct{ name, data string }{
		{"object", `{"move":"left","n":1}`},
		{"empty object", `{}`},
		{"array", `[1,"two",null,true,{"x":[]}]`},
		{"empty array", `[]`},
		{"string", `"hello"`},
		{"string with escapes", `"quote \" backslash \\ newline \n tab \t unicode \u00e9 \ud83d\ude00"`},
		{"raw utf-8 string", `"héllo 世界 😀"`},
		{"empty string", `""`},
		{"integer", `42`},
		{"negative float", `-3.25e-7`},
		{"big integer (no float rounding)", `12345678901234567890123`},
		{"true", `true`},
		{"false", `false`},
		{"null", `null`},
		{"nested", `{"a":{"b":{"c":[[{"d":[1,{"e":null}]}]]}}}`},
		{"whitespace inside", "{ \"a\" :\t[ 1 , 2 ]\n}"},
	}
	for _, tc := range cases {
		for _, to := range []string{"", `,"to":"b"`} {
			a.Send(`{"type":"send","data":` + tc.data + to + `}`)
			m := readRelayed(t, b)
			if m.From != "a" {
				t.Fatalf("%s%s: from %q, want a", tc.name, to, m.From)
			}
			if got, want := compact(t, m.Data), compact(t, []byte(tc.data)); got != want {
				t.Fatalf("%s%s: data %s, want %s", tc.name, to, got, want)
			}
		}
	}
}

func TestLeave(t *testing.T) {
	e := start(t, nil)
	a, code, _ := e.create("a", nil)
	b, _ := e.join(code, "b", a)
	c, _ := e.join(code, "c", a, b)

	c.Send(`{"type":"leave"}`)
	for _, r := range []*testutil.Client{a, b} {
		if m := r.Expect("peer_left"); m.Str("clientId") != "c" {
			t.Fatalf("peer_left %v, want c", m)
		}
	}
	// c is out: sending is an error, and it may create a room of its own.
	c.Send(`{"type":"send","data":1}`)
	expectExact(t, c, "Not in a room")
	c.Send(map[string]any{"type": "create", "clientId": "c"})
	if other := c.Expect("created").Str("room"); other == code {
		t.Fatal("a new room got the code of a live room")
	}
	// a's broadcast reaches b only.
	a.Send(`{"type":"send","data":"after"}`)
	if m := readRelayed(t, b); string(m.Data) != `"after"` {
		t.Fatalf("b got %s", m.Data)
	}
	if _, ri := e.getRoom(code); ri.Members != 2 {
		t.Fatalf("members %d, want 2", ri.Members)
	}

	b.Send(`{"type":"leave"}`)
	if m := a.Expect("peer_left"); m.Str("clientId") != "b" {
		t.Fatalf("peer_left %v, want b", m)
	}
	a.Send(`{"type":"leave"}`)
	a.Send(`{"type":"leave"}`) // processed in order: its error proves the first leave is done
	expectExact(t, a, "Not in a room")
	if st, _ := e.getRoom(code); st != http.StatusNotFound {
		t.Fatalf("GET emptied room: %d, want 404", st)
	}
	// The emptied room cannot be joined.
	b.Send(map[string]any{"type": "join", "clientId": "b", "room": code})
	expectExact(t, b, "Room not found")
}

func TestDisconnect(t *testing.T) {
	cases := []struct {
		name  string
		close func(*testutil.Client)
	}{
		{"close handshake", func(c *testutil.Client) {
			_ = c.Conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(1000, "bye"), time.Now().Add(time.Second))
			c.ExpectClose(1000)
			c.Conn.Close()
		}},
		{"socket dropped", func(c *testutil.Client) { c.Conn.NetConn().Close() }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, nil)
			a, code, _ := e.create("a", nil)
			b, _ := e.join(code, "b", a)
			c, _ := e.join(code, "c", a, b)
			tc.close(b)
			for _, r := range []*testutil.Client{a, c} {
				if m := r.Expect("peer_left"); m.Str("clientId") != "b" {
					t.Fatalf("peer_left %v, want b", m)
				}
			}
			if _, ri := e.getRoom(code); ri.Members != 2 {
				t.Fatalf("members %d after disconnect, want 2", ri.Members)
			}
			// The same clientId may come back as an ordinary member.
			b2, j := e.join(code, "b", a, c)
			if got := clients(t, j); !slices.Equal(got, []string{"a", "c", "b"}) {
				t.Fatalf("clients %q, want [a c b]", got)
			}
			tc.close(a)
			tc.close(c)
			for range 2 {
				if m := b2.Expect("peer_left"); m.Str("clientId") != "a" && m.Str("clientId") != "c" {
					t.Fatalf("peer_left %v", m)
				}
			}
			tc.close(b2)
			eventually(t, "the empty room to be deleted", func() bool {
				st, _ := e.getRoom(code)
				return st == http.StatusNotFound
			})
			if v, ok := e.metric("partyline_rooms", `dialect="party"`); !ok || v != 0 {
				t.Fatalf("partyline_rooms = %v (%v), want 0", v, ok)
			}
		})
	}
}

func TestSetState(t *testing.T) {
	e := start(t, nil)
	a, code, _ := e.create("a", nil)
	b, _ := e.join(code, "b", a)

	// A joiner before any state gets no state message: its next message is
	// the marker below.
	a.Send(`{"type":"set_state","state":{"round":1}}`)
	for _, r := range []*testutil.Client{a, b} { // sender included
		if m := r.Expect("state"); compact(t, mustJSON(t, m["state"])) != `{"round":1}` {
			t.Fatalf("state %v", m)
		}
	}
	b.Send(`{"type":"set_state","state":[{"round":2},"latest"]}`)
	for _, r := range []*testutil.Client{a, b} {
		if m := r.Expect("state"); compact(t, mustJSON(t, m["state"])) != `[{"round":2},"latest"]` {
			t.Fatalf("state %v", m)
		}
	}
	// A later joiner gets the latest state right after joined, before any
	// other message.
	c := e.dial()
	c.Send(map[string]any{"type": "join", "clientId": "c", "room": code})
	c.Expect("joined")
	if m := c.Expect("state"); compact(t, mustJSON(t, m["state"])) != `[{"round":2},"latest"]` {
		t.Fatalf("joiner's state %v, want the latest", m)
	}
	a.Expect("peer_joined")
	b.Expect("peer_joined")

	// null is a state too; a joiner then gets state null.
	c.Send(`{"type":"set_state","state":null}`)
	for _, r := range []*testutil.Client{a, b, c} {
		if m := r.Expect("state"); m["state"] != nil {
			t.Fatalf("state %v, want null", m)
		}
	}
	d := e.dial()
	d.Send(map[string]any{"type": "join", "clientId": "d", "room": code})
	d.Expect("joined")
	if m := d.Expect("state"); m["state"] != nil {
		t.Fatalf("joiner's state %v, want null", m)
	}
	for _, r := range []*testutil.Client{a, b, c} {
		r.Expect("peer_joined")
	}

	// Size limit: 16 KiB encoded is accepted, one byte more is refused and
	// the previous state stays.
	limit := 16 << 10
	ok := `"` + strings.Repeat("s", limit-2) + `"`
	a.Send(`{"type":"set_state","state":` + ok + `}`)
	for _, r := range []*testutil.Client{a, b, c, d} {
		if m := r.Expect("state"); len(m.Str("state")) != limit-2 {
			t.Fatalf("state of %d bytes, want %d", len(m.Str("state")), limit-2)
		}
	}
	tooBig := `"` + strings.Repeat("s", limit-1) + `"`
	a.Send(`{"type":"set_state","state":` + tooBig + `}`)
	expectError(t, a, "state too large")
	a.Send(`{"type":"send","data":"still here"}`)
	for _, r := range []*testutil.Client{b, c, d} {
		if m := readRelayed(t, r); string(m.Data) != `"still here"` {
			t.Fatalf("got %s: the refused state reached a member", m.Data)
		}
	}
	f := e.dial()
	f.Send(map[string]any{"type": "join", "clientId": "f", "room": code})
	f.Expect("joined")
	if m := f.Expect("state"); len(m.Str("state")) != limit-2 {
		t.Fatalf("after a refused set_state the joiner got %d bytes of state, want the previous %d", len(m.Str("state")), limit-2)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestReconnect(t *testing.T) {
	cases := []struct {
		name    string
		strict  bool
		full    bool   // the room is at maxClients
		token   string // "right", "wrong", "none", "number"
		wantErr string // "" when the replacement must succeed
	}{
		{name: "no token (seed behaviour)", token: "none"},
		{name: "right token", token: "right"},
		{name: "right token in a full room", token: "right", full: true},
		{name: "no token in a full room", token: "none", full: true},
		{name: "wrong token", token: "wrong", wantErr: "token"},
		{name: "token not a string", token: "number", wantErr: "token"},
		{name: "strict: no token", strict: true, token: "none", wantErr: "token"},
		{name: "strict: wrong token", strict: true, token: "wrong", wantErr: "token"},
		{name: "strict: right token", strict: true, token: "right"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, func(c *server.Config) { c.Party.StrictReconnect = tc.strict })
			max := 4
			if tc.full {
				max = 2
			}
			a, code, _ := e.create("a", map[string]any{"maxClients": max})
			b, jb := e.join(code, "b", a)
			btok := jb.Str("token")
			e.waitConnections(2)

			n := e.dial()
			req := map[string]any{"type": "join", "clientId": "b", "room": strings.ToLower(code)}
			switch tc.token {
			case "right":
				req["token"] = btok
			case "wrong":
				req["token"] = btok + "x"
			case "number":
				req["token"] = 7
			}
			n.Send(req)

			if tc.wantErr != "" {
				expectError(t, n, tc.wantErr)
				// Nothing was replaced: b still sends and receives as "b".
				b.Send(`{"type":"send","data":"from old b"}`)
				if m := readRelayed(t, a); m.From != "b" || string(m.Data) != `"from old b"` {
					t.Fatalf("a got %+v", m)
				}
				a.Send(`{"type":"send","to":"b","data":"to b"}`)
				if m := readRelayed(t, b); string(m.Data) != `"to b"` {
					t.Fatalf("old b got %+v", m)
				}
				if _, ri := e.getRoom(code); ri.Members != 2 {
					t.Fatalf("members %d, want 2", ri.Members)
				}
				// The refused connection stays open and usable.
				n.Send(map[string]any{"type": "create", "clientId": "n"})
				n.Expect("created")
				return
			}

			j := n.Expect("joined")
			if got := clients(t, j); !slices.Equal(got, []string{"a", "b"}) {
				t.Fatalf("clients %q, want [a b]", got)
			}
			if j.Str("token") != btok {
				t.Fatalf("token after replacement %q, want the clientId's token %q", j.Str("token"), btok)
			}
			// The old connection is closed with 4000 "replaced".
			b.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, msg, err := b.Conn.ReadMessage()
			ce, ok := err.(*websocket.CloseError)
			if !ok || ce.Code != 4000 || ce.Text != "replaced" {
				t.Fatalf("old connection: message %q, err %v; want close 4000 \"replaced\"", msg, err)
			}
			e.waitConnections(2) // the old connection's OnClose has run
			// No peer_left/peer_joined reached a: its next message is n's.
			n.Send(`{"type":"send","data":"from new b"}`)
			if m := readRelayed(t, a); m.From != "b" || string(m.Data) != `"from new b"` {
				t.Fatalf("a got %+v, want the new b's message first", m)
			}
			a.Send(`{"type":"send","to":"b","data":"to new b"}`)
			if m := readRelayed(t, n); string(m.Data) != `"to new b"` {
				t.Fatalf("new b got %+v", m)
			}
			if _, ri := e.getRoom(code); ri.Members != 2 {
				t.Fatalf("members %d, want 2", ri.Members)
			}
			// The replacement is a full member: leaving announces it.
			n.Send(`{"type":"leave"}`)
			if m := a.Expect("peer_left"); m.Str("clientId") != "b" {
				t.Fatalf("peer_left %v", m)
			}
		})
	}
}

// TestReconnectTokenOfCreator replaces the room's creator with the token
// from "created".
func TestReconnectTokenOfCreator(t *testing.T) {
	e := start(t, func(c *server.Config) { c.Party.StrictReconnect = true })
	a, code, atok := e.create("a", nil)
	b, _ := e.join(code, "b", a)
	n := e.dial()
	n.Send(map[string]any{"type": "join", "clientId": "a", "room": code, "token": atok})
	// A replacement is a re-join: the joiner comes last ("the joiner last").
	if got := clients(t, n.Expect("joined")); !slices.Equal(got, []string{"b", "a"}) {
		t.Fatalf("clients %q", got)
	}
	a.ExpectClose(4000)
	n.Send(`{"type":"send","data":"x"}`)
	if m := readRelayed(t, b); m.From != "a" {
		t.Fatalf("b got %+v, want a message from a", m)
	}
}

// TestErrors sends every malformed or refused request and checks that the
// error names the problem and that the connection stays usable.
func TestErrors(t *testing.T) {
	e := start(t, nil)
	owner, full, _ := e.create("owner", map[string]any{"maxClients": 1})
	_ = owner
	_, other, _ := e.create("other", nil)

	type setup int
	const (
		fresh  setup = iota // a new connection in no room
		inRoom              // a member of a room of its own, with a peer "peer"
	)
	long := strings.Repeat("x", 129)
	cases := []struct {
		name  string
		setup setup
		msg   any // string: text frame; []byte: binary frame
		want  string
		exact bool // want is the whole text (Party-Sockets' own), else a part of it
	}{
		{"create: missing clientId", fresh, `{"type":"create"}`, "clientId is required", true},
		{"create: empty clientId", fresh, `{"type":"create","clientId":""}`, "clientId is required", true},
		{"create: clientId of 129 bytes", fresh, `{"type":"create","clientId":"` + long + `"}`, "clientId too long: at most 128 bytes", true},
		{"create: clientId a number", fresh, `{"type":"create","clientId":42}`, "clientId is required", true},
		{"create: clientId null", fresh, `{"type":"create","clientId":null}`, "clientId is required", true},
		{"create: clientId an object", fresh, `{"type":"create","clientId":{"id":"x"}}`, "clientId is required", true},
		{"create: clientId an array", fresh, `{"type":"create","clientId":["x"]}`, "clientId is required", true},
		{"create: maxClients 0", fresh, `{"type":"create","clientId":"x","maxClients":0}`, "maxClients must be a positive number", true},
		{"create: maxClients -1", fresh, `{"type":"create","clientId":"x","maxClients":-1}`, "maxClients must be a positive number", true},
		{"create: maxClients 2.5", fresh, `{"type":"create","clientId":"x","maxClients":2.5}`, "maxClients must be an integer from 1 to 1000", true},
		{"create: maxClients a string", fresh, `{"type":"create","clientId":"x","maxClients":"4"}`, "maxClients must be a positive number", true},
		{"create: maxClients over the limit", fresh, `{"type":"create","clientId":"x","maxClients":1001}`, "maxClients must be an integer from 1 to 1000", true},
		{"create: maxClients huge", fresh, `{"type":"create","clientId":"x","maxClients":99999999999999999999}`, "maxClients must be an integer from 1 to 1000", true},
		{"create: maxClients a bool", fresh, `{"type":"create","clientId":"x","maxClients":true}`, "maxClients must be a positive number", true},
		{"create: already in a room", inRoom, `{"type":"create","clientId":"again"}`, "Already in a room", true},
		{"join: missing clientId", fresh, `{"type":"join","room":"` + other + `"}`, "clientId is required", true},
		{"join: clientId of 129 bytes", fresh, `{"type":"join","clientId":"` + long + `","room":"` + other + `"}`, "clientId too long: at most 128 bytes", true},
		{"join: clientId a number", fresh, `{"type":"join","clientId":1,"room":"` + other + `"}`, "clientId is required", true},
		{"join: missing room", fresh, `{"type":"join","clientId":"x"}`, "room is required", true},
		{"join: room a number", fresh, `{"type":"join","clientId":"x","room":1234}`, "room is required", true},
		{"join: room not found", fresh, `{"type":"join","clientId":"x","room":"QQQQQQ"}`, "Room not found", true},
		{"join: room full", fresh, `{"type":"join","clientId":"x","room":"` + full + `"}`, "Room is full", true},
		{"join: already in a room", inRoom, `{"type":"join","clientId":"again","room":"` + other + `"}`, "Already in a room", true},
		{"join: own room again", inRoom, `{"type":"join","clientId":"again","room":"OWN"}`, "Already in a room", true},
		{"send: not in a room", fresh, `{"type":"send","data":1}`, "Not in a room", true},
		{"leave: not in a room", fresh, `{"type":"leave"}`, "Not in a room", true},
		{"set_state: not in a room", fresh, `{"type":"set_state","state":1}`, "Not in a room", true},
		{"send: unknown target", inRoom, `{"type":"send","to":"nobody","data":1}`, "Target client not found", true},
		{"send: target a number", inRoom, `{"type":"send","to":5,"data":1}`, "Target client not found", true},
		{"set_state: missing state", inRoom, `{"type":"set_state"}`, "set_state needs a state field", true},
		{"set_state: state too large", inRoom, `{"type":"set_state","state":"` + strings.Repeat("y", 16<<10) + `"}`, "state too large", false},
		{"invalid JSON", fresh, `{"type":"create",`, "Invalid JSON", true},
		{"invalid JSON in a room", inRoom, `not json`, "Invalid JSON", true},
		{"non-object JSON: array", fresh, `[{"type":"create","clientId":"x"}]`, "Unknown message type", true},
		{"non-object JSON: string", fresh, `"create"`, "Unknown message type", true},
		{"non-object JSON: number", inRoom, `42`, "Unknown message type", true},
		{"non-object JSON: null", fresh, `null`, "Unknown message type", true},
		{"non-object JSON: true", fresh, `true`, "Unknown message type", true},
		{"unknown type", fresh, `{"type":"dance"}`, "Unknown message type", true},
		{"unknown type in a room", inRoom, `{"type":"CREATE","clientId":"x"}`, "Unknown message type", true},
		{"missing type", fresh, `{"clientId":"x"}`, "Unknown message type", true},
		{"type not a string", fresh, `{"type":1}`, "Unknown message type", true},
		{"empty object", inRoom, `{}`, "Unknown message type", true},
		{"binary frame", fresh, []byte(`{"type":"create","clientId":"x"}`), "binary", false},
		{"binary frame in a room", inRoom, []byte(`{"type":"send","data":1}`), "binary", false},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := e.with(t)
			c := e.dial()
			var peer *testutil.Client
			own := ""
			if tc.setup == inRoom {
				id := fmt.Sprint("member", i)
				c.Send(map[string]any{"type": "create", "clientId": id})
				own = c.Expect("created").Str("room")
				peer, _ = e.join(own, "peer", c)
			}
			switch m := tc.msg.(type) {
			case []byte:
				if err := c.Conn.WriteMessage(websocket.BinaryMessage, m); err != nil {
					t.Fatal(err)
				}
			case string:
				c.Send(strings.ReplaceAll(m, `"OWN"`, `"`+own+`"`))
			}
			if got := expectError(t, c, tc.want); tc.exact && got != tc.want {
				t.Fatalf("error %q, want exactly %q", got, tc.want)
			}

			// The connection stays open and its state is unchanged.
			if tc.setup == fresh {
				c.Send(map[string]any{"type": "create", "clientId": "follow-up"})
				c.Expect("created")
				return
			}
			c.Send(`{"type":"send","data":"follow-up"}`)
			if m := readRelayed(t, peer); string(m.Data) != `"follow-up"` {
				t.Fatalf("peer got %s, want the follow-up (nothing from the refused request)", m.Data)
			}
			if _, ri := e.getRoom(own); ri.Members != 2 {
				t.Fatalf("own room has %d members, want 2", ri.Members)
			}
		})
	}
	// The refused requests changed no room.
	if _, ri := e.getRoom(full); ri.Members != 1 {
		t.Fatalf("full room has %d members, want 1", ri.Members)
	}
	if _, ri := e.getRoom(other); ri.Members != 1 {
		t.Fatalf("other room has %d members, want 1", ri.Members)
	}
}

// TestErrorShape checks the error message format: {"type":"error","message":TEXT}.
func TestErrorShape(t *testing.T) {
	e := start(t, nil)
	c := e.dial()
	c.Send(`{"type":"leave"}`)
	var m map[string]any
	if err := json.Unmarshal(readRaw(t, c), &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m["type"] != "error" {
		t.Fatalf("error reply %v: want exactly type and message", m)
	}
	if s, ok := m["message"].(string); !ok || s == "" {
		t.Fatalf("error message %v", m["message"])
	}
}

// TestEscapedType: a type written with JSON escapes is the same type.
func TestEscapedType(t *testing.T) {
	e := start(t, nil)
	a := e.dial()
	a.Send(`{"type":"cr\u0065ate","clientId":"a"}`)
	code := a.Expect("created").Str("room")
	b := e.dial()
	b.Send(`{"type":"\u006a\u006f\u0069\u006e","clientId":"b","room":"` + code + `"}`)
	b.Expect("joined")
	a.Expect("peer_joined")
	b.Send(`{"type":"s\u0065nd","data":"x"}`)
	if m := readRelayed(t, a); m.From != "b" || string(m.Data) != `"x"` {
		t.Fatalf("a got %+v", m)
	}
	b.Send(`{"type":"s\u0065nds"}`)
	expectExact(t, b, "Unknown message type")
}

// TestMaxClientsIsAtomic races many joins for one free slot: exactly one
// wins, every other one is told the room is full.
func TestMaxClientsIsAtomic(t *testing.T) {
	// More event loops than cores: more interleavings between the joins.
	e := start(t, func(c *server.Config) { c.EventLoops = 8 })
	const racers = 48
	for round := range 10 {
		owner, code, _ := e.create(fmt.Sprint("owner", round), map[string]any{"maxClients": 3})
		_, _ = e.join(code, "second", owner)
		conns := make([]*websocket.Conn, racers)
		for i := range conns {
			conns[i] = e.dial().Conn
		}
		go1 := make(chan struct{})
		results := make(chan string, racers)
		var wg sync.WaitGroup
		for i, c := range conns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-go1
				req := fmt.Sprintf(`{"type":"join","clientId":"r%d","room":%q}`, i, code)
				c.SetWriteDeadline(time.Now().Add(5 * time.Second))
				if err := c.WriteMessage(websocket.TextMessage, []byte(req)); err != nil {
					results <- "write: " + err.Error()
					return
				}
				c.SetReadDeadline(time.Now().Add(10 * time.Second))
				_, b, err := c.ReadMessage()
				if err != nil {
					results <- "read: " + err.Error()
					return
				}
				var m map[string]any
				_ = json.Unmarshal(b, &m)
				msg, _ := m["message"].(string)
				switch {
				case m["type"] == "joined":
					results <- "joined"
				case m["type"] == "error" && msg == "Room is full":
					results <- "full"
				default:
					results <- string(b)
				}
			}()
		}
		close(go1)
		wg.Wait()
		close(results)
		counts := map[string]int{}
		for r := range results {
			counts[r]++
		}
		if counts["joined"] != 1 || counts["full"] != racers-1 || len(counts) != 2 {
			t.Fatalf("round %d: results %v, want 1 joined and %d room full", round, counts, racers-1)
		}
		if st, ri := e.getRoom(code); st != 200 || ri.Members != 3 {
			t.Fatalf("round %d: room %d %+v, want 3 members", round, st, ri)
		}
		// The owner heard of exactly one racer: its next message after that
		// peer_joined is the reply to its own request.
		owner.Expect("peer_joined")
		owner.Send(`{"type":"bogus"}`)
		expectExact(t, owner, "Unknown message type")
	}
}

// TestThousandMembers fills a room to the default limit of 1,000 and checks
// that one broadcast reaches each other member exactly once.
func TestThousandMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 connections")
	}
	const n = 1000 // the default --party-max-clients
	// The members read nothing until every join is done, so they answer
	// no ping (gorilla answers while reading): on a loaded machine the
	// joins outlast two ping periods and the earliest members were closed.
	e := start(t, func(c *server.Config) { c.PingInterval = 0 })
	owner, code, _ := e.create("m0", nil)
	members := []*testutil.Client{owner}
	var last testutil.Msg
	for i := 1; i < n; i++ {
		c := e.dial()
		c.Send(map[string]any{"type": "join", "clientId": fmt.Sprint("m", i), "room": code})
		last = c.Expect("joined")
		members = append(members, c)
	}
	ids := clients(t, last)
	if len(ids) != n || ids[0] != "m0" || ids[n-1] != fmt.Sprint("m", n-1) {
		t.Fatalf("last joiner's clients: %d ids, first %q, last %q", len(ids), ids[0], ids[len(ids)-1])
	}
	for i, id := range ids {
		if id != fmt.Sprint("m", i) {
			t.Fatalf("clients[%d] = %q: not in join order", i, id)
		}
	}
	extra := e.dial()
	extra.Send(map[string]any{"type": "join", "clientId": "one-too-many", "room": code})
	expectExact(t, extra, "Room is full")

	owner.Send(`{"type":"send","data":{"round":"go"}}`)
	owner.Send(`{"type":"set_state","state":"end"}`) // reaches everyone: the end marker

	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i, c := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			peers, msgs := 0, 0
			for {
				m, err := c.TryRead(20 * time.Second)
				if err != nil {
					errs <- fmt.Errorf("member %d: %v", i, err)
					return
				}
				switch m.Str("type") {
				case "peer_joined":
					peers++
				case "message":
					msgs++
				case "state":
					wantMsgs := 1
					if i == 0 {
						wantMsgs = 0 // the sender
					}
					if peers != n-1-i || msgs != wantMsgs {
						errs <- fmt.Errorf("member %d: %d peer_joined and %d messages, want %d and %d", i, peers, msgs, n-1-i, wantMsgs)
					}
					return
				default:
					errs <- fmt.Errorf("member %d: unexpected %v", i, m)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if _, ri := e.getRoom(code); ri.Members != n {
		t.Fatalf("members %d, want %d", ri.Members, n)
	}
}

// TestConcurrentJoinsAndLeavesKeepViewsExact races joins against joins and
// leaves on several event loops. Each member's view of the room (its
// "joined" clients, then every peer_joined and peer_left) must never add a
// peer twice or remove one it never had, and must end equal to the room.
func TestConcurrentJoinsAndLeavesKeepViewsExact(t *testing.T) {
	e := start(t, func(c *server.Config) { c.EventLoops = 8 })
	const stay, go_ = 24, 12
	for round := range 5 {
		owner, code, _ := e.create(fmt.Sprint("owner", round), nil)
		leavers := make([]*testutil.Client, go_)
		for i := range leavers {
			leavers[i] = e.dial()
			leavers[i].Send(fmt.Sprintf(`{"type":"join","clientId":"l%d","room":%q}`, i, code))
			leavers[i].Expect("joined")
		}
		stayers := make([]*testutil.Client, stay)
		for i := range stayers {
			stayers[i] = e.dial()
		}
		start := make(chan struct{})
		errs := make(chan error, stay+go_)
		for i, c := range stayers {
			go func() {
				<-start
				c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
				errs <- c.Conn.WriteMessage(websocket.TextMessage,
					fmt.Appendf(nil, `{"type":"join","clientId":"s%d","room":%q}`, i, code))
			}()
		}
		for _, c := range leavers {
			go func() { <-start; errs <- c.Conn.Close() }()
		}
		close(start)
		for range stay + go_ {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		// Each stayer's first frame is its "joined"; once all have it, a room
		// of 1+stay holds no leaver any more.
		views := make([]map[string]bool, stay)
		for i, c := range stayers {
			views[i] = map[string]bool{}
			for _, x := range c.Expect("joined")["clients"].([]any) {
				views[i][x.(string)] = true
			}
		}
		testutil.Eventually(t, func() bool {
			st, ri := e.getRoom(code)
			return st == 200 && ri.Members == 1+stay
		})
		want := map[string]bool{fmt.Sprint("owner", round): true}
		for i := range stay {
			want[fmt.Sprint("s", i)] = true
		}
		// Every announcement was queued before the join or leave that made
		// it returned, so a reply to a later request comes after all of them.
		check := func(name string, c *testutil.Client, view map[string]bool) {
			t.Helper()
			c.Send(`{"type":"bogus"}`)
			for {
				m := c.Read()
				id := m.Str("clientId")
				switch m.Str("type") {
				case "peer_joined":
					if view[id] {
						t.Fatalf("round %d: %s told twice that %s joined", round, name, id)
					}
					view[id] = true
				case "peer_left":
					if !view[id] {
						t.Fatalf("round %d: %s told %s left, never having seen it", round, name, id)
					}
					delete(view, id)
				case "error":
					if len(view) != len(want) {
						t.Fatalf("round %d: %s sees %v, room is %v", round, name, view, want)
					}
					for id := range want {
						if !view[id] {
							t.Fatalf("round %d: %s sees %v, room is %v", round, name, view, want)
						}
					}
					return
				default:
					t.Fatalf("round %d: %s got %v", round, name, m)
				}
			}
		}
		check("owner", owner, map[string]bool{fmt.Sprint("owner", round): true})
		for i, c := range stayers {
			check(fmt.Sprint("s", i), c, views[i])
		}
		owner.Conn.Close()
		for _, c := range stayers {
			c.Conn.Close()
		}
	}
}
