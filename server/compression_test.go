package server_test

import (
	"bytes"
	"compress/flate"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"partyline/internal/testutil"
	"partyline/server"
)

// These tests compress and inflate with compress/flate directly, not with
// the codec under test.

func startCompressing(t *testing.T, mutate func(*server.Config)) string {
	s := testutil.Start(t, func(c *server.Config) {
		c.PingInterval = 0
		c.Compression = true
		if mutate != nil {
			mutate(c)
		}
	})
	return s.Addrs()[0].String()
}

// dialOffer upgrades on path with a Sec-WebSocket-Extensions offer ("" for
// none) and returns the client and the extensions the server answered.
func dialOffer(t *testing.T, addr, path, offer string) (*rawClient, string) {
	t.Helper()
	c := dialTCP(t, addr)
	var extra []string
	if offer != "" {
		extra = append(extra, "Sec-WebSocket-Extensions: "+offer)
	}
	req, key := upgradeRequest(addr, path, extra...)
	c.write(req)
	resp := c.readResponse()
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != acceptKey(key) {
		t.Fatalf("offer %q: HTTP %d", offer, resp.StatusCode)
	}
	return c, strings.Join(resp.Header.Values("Sec-WebSocket-Extensions"), ", ")
}

// params normalises an extension answer: name first, then its parameters sorted.
func params(ext string) string {
	if ext == "" {
		return ""
	}
	parts := strings.Split(ext, ";")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	slices.Sort(parts[1:])
	return strings.Join(parts, "; ")
}

const deflateAnswer = "permessage-deflate; client_no_context_takeover; server_no_context_takeover"

func TestDeflateNegotiation(t *testing.T) {
	addr := startCompressing(t, nil)
	off := testutil.Start(t, func(c *server.Config) { c.PingInterval = 0 }).Addrs()[0].String()
	cases := []struct{ offer, want string }{
		{"permessage-deflate", deflateAnswer},
		{"permessage-deflate; client_max_window_bits", deflateAnswer},
		{"permessage-deflate; client_max_window_bits=10", deflateAnswer},
		{"permessage-deflate; client_max_window_bits=8", deflateAnswer},
		{"permessage-deflate; server_no_context_takeover", deflateAnswer},
		{"permessage-deflate; client_no_context_takeover", deflateAnswer},
		{"permessage-deflate; client_no_context_takeover; server_no_context_takeover; client_max_window_bits", deflateAnswer},
		{"permessage-deflate; server_max_window_bits=15", deflateAnswer + "; server_max_window_bits=15"},
		{"permessage-deflate; server_max_window_bits=10", deflateAnswer + "; server_max_window_bits=10"},
		{"permessage-deflate; server_max_window_bits=8; client_max_window_bits=9", deflateAnswer + "; server_max_window_bits=8"},
		// Declined: the connection runs without the extension.
		{"permessage-deflate; server_max_window_bits", ""},
		{"permessage-deflate; server_max_window_bits=7", ""},
		{"permessage-deflate; server_max_window_bits=16", ""},
		{"permessage-deflate; server_max_window_bits=010", ""},
		{"permessage-deflate; client_max_window_bits=16", ""},
		{"permessage-deflate; client_max_window_bits=x", ""},
		{"permessage-deflate; server_no_context_takeover=1", ""},
		{"permessage-deflate; server_no_context_takeover; server_no_context_takeover", ""},
		{"permessage-deflate; client_max_window_bits; client_max_window_bits", ""},
		{"permessage-deflate; mystery", ""},
		{"x-webkit-deflate-frame", ""},
		// Several offers: the first acceptable one.
		{"permessage-deflate; mystery, permessage-deflate; server_max_window_bits=9", deflateAnswer + "; server_max_window_bits=9"},
		{"permessage-deflate; server_max_window_bits=12, permessage-deflate", deflateAnswer + "; server_max_window_bits=12"},
		{"x-other, permessage-deflate", deflateAnswer},
	}
	for _, tc := range cases {
		t.Run(tc.offer, func(t *testing.T) {
			_, got := dialOffer(t, addr, "/wsecho", tc.offer)
			if params(got) != params(tc.want) {
				t.Fatalf("answer %q, want %q", got, tc.want)
			}
			if _, got := dialOffer(t, off, "/wsecho", tc.offer); got != "" {
				t.Fatalf("without --compression: answer %q", got)
			}
		})
	}
}

// deflate compresses p as one permessage-deflate message.
func deflate(t testing.TB, p []byte) []byte {
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	_, _ = w.Write(p)
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	z := b.Bytes()
	if !bytes.HasSuffix(z, []byte{0, 0, 0xff, 0xff}) {
		t.Fatalf("flush tail %x", z[len(z)-4:])
	}
	return z[:len(z)-4]
}

func inflate(t testing.TB, z []byte) []byte {
	t.Helper()
	r := flate.NewReader(io.MultiReader(bytes.NewReader(z), bytes.NewReader([]byte{0, 0, 0xff, 0xff, 1, 0, 0, 0xff, 0xff})))
	p, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("inflate: %v", err)
	}
	return p
}

// readMessage reads one unfragmented data frame and returns its opcode,
// whether it was compressed, and its (inflated) payload.
func (c *rawClient) readMessage() (op byte, compressed bool, p []byte) {
	c.t.Helper()
	f, err := c.readFrame(ioWait)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	if !f.fin || f.masked || (f.rsv != 0 && f.rsv != 4) || (f.op != opText && f.op != opBinary) {
		c.t.Fatalf("got %v, want a whole data frame", f)
	}
	if f.rsv == 4 {
		return f.op, true, inflate(c.t, f.payload)
	}
	return f.op, false, f.payload
}

func zframe(fin, rsv1 bool, op byte, p []byte) []byte {
	b0 := op
	if fin {
		b0 |= finBit
	}
	if rsv1 {
		b0 |= 0x40
	}
	return maskedFrame(b0, p)
}

func TestDeflateMessages(t *testing.T) {
	addr := startCompressing(t, func(c *server.Config) { c.MaxMessageSize = 64 << 10 })
	big := []byte(strings.Repeat("permessage-deflate κόσμε ", 100)) // 2,600 bytes
	small := []byte("short")
	bomb := deflate(t, make([]byte, 1<<20))
	zbig := deflate(t, big)
	third := len(zbig) / 3
	cases := []struct {
		name   string
		offer  string
		send   []byte
		op     byte
		echoed []byte
		zout   bool   // the echo comes back compressed
		pong   bool   // a pong comes first
		fail   uint16 // or the server fails the connection with this code
	}{
		{name: "compressed text, echoed compressed", send: zframe(true, true, opText, zbig), op: opText, echoed: big, zout: true},
		{name: "compressed binary", send: zframe(true, true, opBinary, zbig), op: opBinary, echoed: big, zout: true},
		{name: "plain text, echoed compressed", send: zframe(true, false, opText, big), op: opText, echoed: big, zout: true},
		{name: "under --compression-min-size, echoed plain", send: zframe(true, true, opText, deflate(t, small)), op: opText, echoed: small},
		{name: "fragmented, RSV1 on the first frame only", send: join(zframe(false, true, opText, zbig[:third]), pingFrame("p"),
			zframe(false, false, opCont, zbig[third:2*third]), zframe(true, false, opCont, zbig[2*third:])), op: opText, echoed: big, zout: true, pong: true},
		{name: "window of 2^8: a longer echo goes plain", offer: "permessage-deflate; server_max_window_bits=8", send: zframe(true, true, opText, zbig), op: opText, echoed: big},
		{name: "window of 2^12: a shorter echo is compressed", offer: "permessage-deflate; server_max_window_bits=12", send: zframe(true, true, opText, zbig), op: opText, echoed: big, zout: true},
		{name: "compressed ping -> 1002", send: zframe(true, true, opPing, nil), fail: 1002},
		{name: "compressed close -> 1002", send: zframe(true, true, opClose, []byte{3, 0xe8}), fail: 1002},
		{name: "RSV1 on a continuation -> 1002", send: join(zframe(false, true, opText, zbig[:third]), zframe(true, true, opCont, zbig[third:])), fail: 1002},
		{name: "RSV2 -> 1002", send: maskedFrame(finBit|0x20|opText, []byte("x")), fail: 1002},
		{name: "zip bomb -> 1009", send: zframe(true, true, opBinary, bomb), fail: 1009},
		{name: "invalid UTF-8 once inflated -> 1007", send: zframe(true, true, opText, deflate(t, []byte("a\xed\xa0\x80b"))), fail: 1007},
		{name: "not DEFLATE -> 1007", send: zframe(true, true, opBinary, []byte{0xff, 0xff, 0xff, 0xff}), fail: 1007},
		{name: "RSV1 without the extension -> 1002", offer: "-", send: zframe(true, true, opText, zbig), fail: 1002},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			offer := "permessage-deflate"
			if tc.offer != "" {
				offer = tc.offer
			}
			if offer == "-" {
				offer = ""
			}
			c, _ := dialOffer(t, addr, "/wsecho", offer)
			c.write(tc.send)
			if tc.fail != 0 {
				c.expectClose(tc.fail, false)
				return
			}
			if tc.pong {
				c.expectPong("p")
			}
			op, z, p := c.readMessage()
			if op != tc.op || z != tc.zout || !bytes.Equal(p, tc.echoed) {
				t.Fatalf("echo: op %d compressed %v, %d bytes; want op %d compressed %v, %d bytes", op, z, len(p), tc.op, tc.zout, len(tc.echoed))
			}
		})
	}
}

// A party broadcast reaches a member that negotiated compression
// compressed and one that did not plain, with the same payload.
func TestDeflateBroadcast(t *testing.T) {
	addr := startCompressing(t, nil)
	a, _ := dialOffer(t, addr, "/party", "permessage-deflate")
	a.send(map[string]any{"type": "create", "clientId": "a"})
	_, _, p := a.readMessage()
	var created struct{ Room string }
	if err := json.Unmarshal(p, &created); err != nil || created.Room == "" {
		t.Fatalf("created: %s", p)
	}
	members := map[string]string{"z": "permessage-deflate; client_max_window_bits", "p": ""}
	clients := map[string]*rawClient{}
	for id, offer := range members {
		c, ext := dialOffer(t, addr, "/party", offer)
		if (ext != "") != (offer != "") {
			t.Fatalf("%s: answer %q to offer %q", id, ext, offer)
		}
		c.send(map[string]any{"type": "join", "room": created.Room, "clientId": id})
		for { // joined, then the other's peer_joined
			if _, _, p := c.readMessage(); bytes.Contains(p, []byte(`"joined"`)) {
				break
			}
		}
		clients[id] = c
	}
	data := strings.Repeat("a broadcast worth compressing ", 30)
	a.send(map[string]any{"type": "send", "data": data})
	for id, c := range clients {
		for {
			_, z, p := c.readMessage()
			if bytes.Contains(p, []byte(`"peer_joined"`)) {
				continue
			}
			if !bytes.Contains(p, []byte(data)) {
				t.Fatalf("%s: got %.80s", id, p)
			}
			if z != (id == "z") {
				t.Fatalf("%s: compressed %v", id, z)
			}
			break
		}
	}
}
