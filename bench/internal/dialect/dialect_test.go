package dialect

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

func TestPartyRoundTrip(t *testing.T) {
	var d Party
	st := Stamp{T: 1763769600123456789, I: 12345, S: 678, K: 19}
	out, _ := AppendSized(d, nil, nil, "", "", st, 150)
	if len(out) != 150 {
		t.Fatalf("sized send is %d bytes, want 150: %s", len(out), out)
	}
	if !bytes.HasPrefix(out, []byte(`{"type":"send","data":{"t":1763769600123456789,"i":12345,"s":678,"k":19,"p":"x`)) {
		t.Fatalf("send: %s", out)
	}
	to, _ := AppendSized(d, nil, nil, "", `we"ird`, st, 10)
	if !bytes.Contains(to, []byte(`"to":"we\"ird"`)) {
		t.Fatalf("targeted send: %s", to)
	}
	// The server relays data as it came, in any field order and spacing.
	data := out[len(`{"type":"send","data":`) : len(out)-1]
	for _, msg := range []string{
		`{"type":"message","from":"c1","data":` + string(data) + `}`,
		`{"data":` + string(data) + `, "from":"c1","type":"message"}`,
		`{ "from" : "c1" , "data" : ` + string(data) + ` , "type" : "message" }`,
	} {
		ev, ok := d.Parse([]byte(msg))
		if !ok || ev.Kind != Message || string(ev.Peer) != "c1" {
			t.Fatalf("Parse(%s) = %+v, %v", msg, ev, ok)
		}
		got, ok := ParseStamp(ev.Data)
		if !ok || got != st || !ev.HasStamp || ev.Stamp != st {
			t.Fatalf("ParseStamp(%s) = %+v, %v; event stamp %+v %v", ev.Data, got, ok, ev.Stamp, ev.HasStamp)
		}
	}
}

func TestPartyParse(t *testing.T) {
	var d Party
	for _, tc := range []struct {
		in   string
		kind Kind
		room string
		peer string
		n    int
	}{
		{`{"type":"created","room":"AB2C","token":"x"}`, Created, "AB2C", "", -1},
		{`{"type":"joined","room":"AB2C","clients":["a","b\"]",{"x":1}],"token":"x"}`, Joined, "AB2C", "", 3},
		{`{"type":"joined","room":"AB2C","clients":[]}`, Joined, "AB2C", "", 0},
		{`{"type":"peer_joined","clientId":"c9"}`, PeerJoined, "", "c9", -1},
		{`{"type":"peer_left","clientId":"c9"}`, PeerLeft, "", "c9", -1},
		{`{"type":"error","message":"room full"}`, Error, "", "", -1},
		{`{"type":"state","state":{"a":[1,2,{"b":"}"}]}}`, Other, "", "", -1},
		{`{"type":"message","from":"x","data":{"t":1,"i":2,"s":3}}`, Message, "", "x", -1},
		{`{"type":"message","from":"x","data":{"t":1,"i":2,"s":3,"k":4,"z":{"a":"}"}},"more":[]}`, Message, "", "x", -1},
	} {
		ev, ok := d.Parse([]byte(tc.in))
		if !ok || ev.Kind != tc.kind || string(ev.Room) != tc.room || string(ev.Peer) != tc.peer || ev.Members != tc.n {
			t.Errorf("Parse(%s) = %+v %v", tc.in, ev, ok)
		}
	}
	if ev, _ := d.Parse([]byte(`{"data":"str","type":"message"}`)); ev.HasStamp || string(ev.Data) != `"str"` {
		t.Errorf("string data: %+v", ev)
	}
	for _, bad := range []string{``, `[]`, `{"type":"message"`, `{"type":}`, `{"type":"message","data":{"t":1}`, `{"a" 1}`} {
		if _, ok := d.Parse([]byte(bad)); ok {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}

func TestParseStampFloat(t *testing.T) {
	// A server that decodes data into float64 and re-encodes it.
	st, ok := ParseStamp([]byte(`{"t":1.7637696001234568e+18,"i":1,"s":2,"k":3,"p":""}`))
	if !ok || st.T/1000 != 1763769600123456 || st.S != 2 {
		t.Fatalf("%+v %v", st, ok)
	}
	if _, ok := ParseStamp([]byte(`{"t":"1","i":1,"s":2,"k":3}`)); ok {
		t.Fatal("string t accepted")
	}
}

func BenchmarkParseMessage(b *testing.B) {
	var d Party
	st := Stamp{T: 1763769600123456789, I: 12345, S: 678, K: 19}
	out, _ := AppendSized(d, nil, nil, "", "", st, 150)
	data := out[len(`{"type":"send","data":`) : len(out)-1]
	msg := []byte(fmt.Sprintf(`{"type":"message","from":"b1a2b3-12345","data":%s}`, data))
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if ev, _ := d.Parse(msg); !ev.HasStamp {
			b.Fatal("bad")
		}
	}
	_ = strings.Repeat
}

// FuzzFastPath: whatever the canonical-form fast paths accept, the general
// parsers read the same way.
func FuzzFastPath(f *testing.F) {
	st := Stamp{T: 1763769600123456789, I: 12345, S: 678, K: 19}
	out, _ := AppendSized(Party{}, nil, nil, "", "", st, 150)
	data := out[len(`{"type":"send","data":`) : len(out)-1]
	f.Add([]byte(`{"type":"message","from":"b1-7","data":` + string(data) + `}`))
	f.Add([]byte(`{"type":"message","from":"b\\1","data":{"t":-1,"i":2,"s":3,"k":4,"p":"x\\"}}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		ev, ok := parseMessageFast(p)
		if !ok {
			return
		}
		gen, gok := parseGeneral(p)
		if !gok || gen.Kind != ev.Kind || string(gen.Peer) != string(ev.Peer) || !gen.HasStamp || gen.Stamp != ev.Stamp ||
			string(gen.Data) != string(ev.Data) {
			t.Fatalf("%q: fast %+v, general %+v %v", p, ev, gen, gok)
		}
		if s2, n2, ok2 := scanStampGeneral(ev.Data); !ok2 || s2 != ev.Stamp || n2 != len(ev.Data) {
			t.Fatalf("%q: general stamp %+v %d %v", ev.Data, s2, n2, ok2)
		}
	})
}

// The raw echo returns what was sent: a join must read as "joined" and a
// send as a message carrying its stamp.
func TestWSEchoRoundTrip(t *testing.T) {
	var d WSEcho
	if ev, ok := d.Parse(d.AppendJoin(nil, "c1", "r1")); !ok || ev.Kind != Joined || string(ev.Room) != "r1" {
		t.Fatalf("echoed join: %+v %v", ev, ok)
	}
	if ev, ok := d.Parse(d.AppendCreate(nil, "c1", "r1", 1)); !ok || ev.Kind != Joined {
		t.Fatalf("echoed create: %+v %v", ev, ok)
	}
	st := Stamp{T: 1763769600123456789, I: 7, S: 3, K: 0}
	out, _ := AppendSized(d, nil, nil, "r1", "", st, 300)
	ev, ok := d.Parse(out)
	if !ok || ev.Kind != Message || !ev.HasStamp || ev.Stamp != st {
		t.Fatalf("echoed send %s: %+v %v", out, ev, ok)
	}
	if d.Path("") != "/wsecho" || !d.EchoesSender() {
		t.Fatal("path or echo")
	}
}

func TestPartyV2Parse(t *testing.T) {
	var d PartyV2
	st := Stamp{T: 1763769600123456789, I: 12345, S: 678, K: 19}
	out, _ := AppendSized(d, nil, nil, "", "", st, 150)
	data := out[len(`{"type":"send","data":`) : len(out)-1]
	for _, msg := range []string{
		`{"type":"message","from":3,"data":` + string(data) + `}`,
		`{"data":` + string(data) + `,"from":3,"type":"message"}`,
	} {
		ev, ok := d.Parse([]byte(msg))
		if !ok || ev.Kind != Message || string(ev.Peer) != "3" || !ev.HasStamp || ev.Stamp != st {
			t.Fatalf("Parse(%s) = %+v, %v", msg, ev, ok)
		}
	}
	for _, tc := range []struct {
		in   string
		kind Kind
		peer string
		n    int
	}{
		{`{"type":"created","room":"Mu5h6Z","instance":"","region":"","index":0}`, Created, "0", -1},
		{`{"type":"joined","room":"Mu5h6Z","index":2,"peers":[0,1]}`, Joined, "2", 3},
		{`{"type":"peer_joined","index":7}`, PeerJoined, "7", -1},
		{`{"type":"peer_left","index":7}`, PeerLeft, "7", -1},
	} {
		ev, ok := d.Parse([]byte(tc.in))
		if !ok || ev.Kind != tc.kind || string(ev.Peer) != tc.peer || ev.Members != tc.n {
			t.Fatalf("Parse(%s) = %+v, %v", tc.in, ev, ok)
		}
	}
	if c := d.AppendCreate(nil, "a", "", 0); string(c) != `{"type":"create","clientId":"a","maxClients":1073741824}` {
		t.Fatalf("create %s", c)
	}
	if s := d.AppendSend(nil, "", "4", []byte("1")); string(s) != `{"type":"send","to":4,"data":1}` {
		t.Fatalf("send %s", s)
	}
}
