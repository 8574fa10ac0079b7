package party

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"partyline/codec"
)

// v2Room opens a party-v2 room with a host and a guest on nopConns.
func v2Room(t testing.TB) (d *Dialect, host, guest *session, hc, gc *nopConn) {
	cfg := Defaults()
	_ = cfg.Validate()
	d = NewV2(cfg)
	hc, gc = &nopConn{id: 1}, &nopConn{id: 2}
	host, guest = d.Open(hc).(*session), d.Open(gc).(*session)
	host.OnMessage(codec.KindText, []byte(`{"type":"create","clientId":"h","maxClients":4}`))
	if host.room == nil {
		t.Fatal("create failed")
	}
	guest.OnMessage(codec.KindText, []byte(`{"type":"join","clientId":"g","room":"`+host.room.Name+`"}`))
	if guest.room == nil {
		t.Fatal("join failed")
	}
	return d, host, guest, hc, gc
}

// FuzzV2Message feeds any frame to a party-v2 host, a guest and a socket
// in no room: nothing may panic, and the room keeps relaying.
func FuzzV2Message(f *testing.F) {
	for _, s := range []string{
		``, `null`, `{}`, `[]`, `"x"`, `{"type":"send","to":1,"data":{"a":[1,2]}}`, `{"type":"send","to":1e308}`,
		`{"type":"send","to":-0}`, `{"type":"send","to":"0"}`, `{"type":"set_state","data":"\ud800"}`,
		`{"type":"set_state","data":"\ud83d\ude00\u2028"}`, `{"type":"close_room"}`, `{"type":"join","clientId":"g","room":"x"}`,
		`{"type":"create","clientId":"a","maxClients":1e999,"url":"https://{room}.a.com/{instance}"}`,
		`{"type":"create","clientId":"a","maxClients":2,"url":"https://[::1]:443/{{}}"}`, `{"type":"\u0073end","data":1}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		d, host, guest, _, gc := v2Room(t)
		loner := d.Open(&nopConn{id: 3}).(*session)
		for _, s := range []*session{guest, loner, host} {
			s.OnMessage(codec.KindText, payload)
			s.OnMessage(codec.KindBinary, payload)
		}
		if host.current() == nil || d.hub.Get(host.room.Name) == nil {
			return // a close_room ended it: fine
		}
		before := gc.sent
		host.OnMessage(codec.KindText, []byte(`{"type":"send","data":1}`))
		if gc.sent == before && guest.current() != nil {
			t.Fatal("the room stopped relaying")
		}
	})
}

// FuzzControllerURL: checkURL never panics, and an accepted template
// resolves to a URL without placeholders.
func FuzzControllerURL(f *testing.F) {
	for _, s := range []string{"https://a.com/{room}", "https:foo", "{}", "https://a.com/{{room}}", "https://exa%mple.com/",
		"https://[::1]/", "https://1.2.3.4:0/", "https://1.2.3.256/", "HTTPS://A.COM/{instance}?x={room}"} {
		f.Add(s, "inst")
	}
	f.Fuzz(func(t *testing.T, u, instance string) {
		tmpl, e := checkURL(codec.AppendString(nil, u))
		if e != "" {
			return
		}
		if got := resolveURL(tmpl, "111111", instance); strings.Contains(got, "{room}") || strings.Contains(got, "{instance}") {
			t.Fatalf("%q resolved to %q", u, got)
		}
	})
}

// FuzzJSJSONSize: whitespace outside strings never counts, and a string
// without escapes or control characters is its UTF-8 length plus quotes.
func FuzzJSJSONSize(f *testing.F) {
	for _, s := range []string{`{"a": [1, 2, "x y"]}`, `"\u2028\ud800\"\\\n"`, `[ null , true ]`, `"中"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !json.Valid([]byte(s)) {
			jsJSONSize([]byte(s)) // must not panic either
			return
		}
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(s)); err != nil {
			t.Fatal(err)
		}
		if a, b := jsJSONSize([]byte(s)), jsJSONSize(compact.Bytes()); a != b {
			t.Fatalf("%q: %d, compacted %d", s, a, b)
		}
		if !strings.ContainsAny(s, "\\\"\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f") {
			q := `"` + s + `"`
			if json.Valid([]byte(q)) && jsJSONSize([]byte(q)) != len(q) {
				t.Fatalf("%q: %d, want %d", q, jsJSONSize([]byte(q)), len(q))
			}
		}
	})
}

func TestJSJSONSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int
	}{
		{`"a"`, 3}, {`"\""`, 4}, {`"\\"`, 4}, {`"\/"`, 3}, {`"\n"`, 4}, {`"\u0001"`, 8}, {`"\u001f"`, 8},
		{`"\u0041"`, 3}, {`"\u00e9"`, 4}, {`"\u2028"`, 5}, {"\"\u2028\"", 5}, {`"\ud83d\ude00"`, 6},
		{`"\ud800"`, 8}, {`"\udc00x"`, 9}, {`{ "a" : [ 1 , 2 ] }`, 11}, {`"<>&"`, 5},
	} {
		if got := jsJSONSize([]byte(tc.in)); got != tc.want {
			t.Errorf("jsJSONSize(%s) = %d, want %d", tc.in, got, tc.want)
		}
	}
}
