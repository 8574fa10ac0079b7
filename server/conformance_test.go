package server_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"partyline/assemble"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"partyline/internal/testutil"
	"partyline/server"
)

// The conformance suite follows the Autobahn TestSuite, sections 1-7 and 9,
// over a raw TCP connection to /party. Replies prove what the server got:
// a party "send" from client a is relayed to client b byte for byte (our
// "echo"), a request that needs no room gets its reply (created, error),
// and a ping is answered by a pong with the same payload.

// exp is one thing the test expects after sending.
type exp struct {
	kind string // "pong", "reply" (JSON type on a), "relay" (data on b), "peer_left" (on b), "failed", "echoed"
	s    string
	code uint16
}

func expPong(p string) exp    { return exp{kind: "pong", s: p} }
func expReply(typ string) exp { return exp{kind: "reply", s: typ} }

// expMaybeReply: a reply the server may drop because a protocol error
// follows in the same read (Autobahn's NON-STRICT): the reply, if any,
// must come before the close.
func expMaybeReply(typ string) exp { return exp{kind: "maybe", s: typ} }
func expRelay(data string) exp     { return exp{kind: "relay", s: data} }
func expPeerLeft() exp             { return exp{kind: "peer_left"} }

// expFailed: the server closes with code (a protocol error); the client
// answers the close and the server hangs up.
func expFailed(code uint16) exp { return exp{kind: "failed", code: code} }

// expEchoed: the server answers the client's close with code (0: empty).
func expEchoed(code uint16) exp { return exp{kind: "echoed", code: code} }

type confCase struct {
	name  string
	peer  bool   // a and b share a room; b sees a's sends
	send  []byte // written by a
	chop  int    // write in pieces of this many bytes (0: one write)
	loose bool   // the server may hang up while we write: ignore write errors
	want  []exp
}

func (c confCase) run(t *testing.T, addr string) {
	var a, b *rawClient
	if c.peer {
		a, b = pairUp(t, addr)
	} else {
		a = dialWS(t, addr, "/party")
	}
	switch {
	case c.loose:
		_ = a.conn.SetWriteDeadline(time.Now().Add(ioWait))
		_, _ = a.conn.Write(c.send)
	case c.chop > 0:
		a.writeChopped(c.send, c.chop)
	default:
		a.write(c.send)
	}
	closed := false
	for _, w := range c.want {
		switch w.kind {
		case "pong":
			a.expectPong(w.s)
		case "reply":
			a.expectJSON(w.s)
		case "maybe":
			f, err := a.readFrame(ioWait)
			if err != nil {
				t.Fatal(err)
			}
			if f.op == opClose {
				a.pushBack(f)
				continue
			}
			if f.op != opText || !strings.Contains(string(f.payload), `"type":"`+w.s+`"`) {
				t.Fatalf("got %v, want a %q reply or the close", f, w.s)
			}
		case "relay":
			b.expectRelay(w.s)
		case "peer_left":
			if id := b.expectJSON("peer_left").str("clientId"); id != "a" {
				t.Fatalf("peer_left %q, want a", id)
			}
		case "failed":
			a.expectClose(w.code, true)
			closed = true
		case "echoed":
			a.expectClose(w.code, false)
			closed = true
		default:
			t.Fatalf("unknown expectation %q", w.kind)
		}
	}
	if !closed {
		a.alive()
	}
	if b != nil {
		b.alive()
	}
}

func runCases(t *testing.T, addr string, cases []confCase) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.run(t, addr)
		})
	}
}

const maxMsg = 64 << 10 // the server's default --max-message-size

func TestConformance(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.PingInterval = 0 })
	addr := s.Addrs()[0].String()
	t.Run("1 framing", func(t *testing.T) { runCases(t, addr, framingCases()) })
	t.Run("2 pings and pongs", func(t *testing.T) { runCases(t, addr, pingCases()) })
	t.Run("3 reserved bits", func(t *testing.T) { runCases(t, addr, rsvCases()) })
	t.Run("4 reserved opcodes", func(t *testing.T) { runCases(t, addr, opcodeCases()) })
	t.Run("5 fragmentation", func(t *testing.T) { runCases(t, addr, fragmentationCases()) })
	t.Run("6 UTF-8", func(t *testing.T) { runCases(t, addr, utf8Cases()) })
	t.Run("7 close", func(t *testing.T) { runCases(t, addr, closeCases()) })
	t.Run("9 limits and masking", func(t *testing.T) { runCases(t, addr, limitCases()) })
}

const fill = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

func framingCases() []confCase {
	var cs []confCase
	cs = append(cs, confCase{name: "1.1.1 text 0 bytes -> error reply", send: textFrame(""), want: []exp{expReply("error")}})
	for _, n := range []int{25, 125, 126, 127, 128, 0xffff, maxMsg} {
		p, data, _ := sendMessage(n, fill)
		cs = append(cs, confCase{name: fmt.Sprintf("1.1 text %d bytes -> relayed", n), peer: true,
			send: textFrame(p), want: []exp{expRelay(data)}})
	}
	p, data, _ := sendMessage(128, fill)
	cs = append(cs, confCase{name: "1.1.7 text 128 bytes written byte by byte -> relayed", peer: true,
		send: textFrame(p), chop: 1, want: []exp{expRelay(data)}})
	p, data, _ = sendMessage(maxMsg, fill)
	cs = append(cs, confCase{name: "1.1.8 text 65536 bytes in 997-byte writes -> relayed", peer: true,
		send: textFrame(p), chop: 997, want: []exp{expRelay(data)}})
	p1, d1, _ := sendMessage(300, "x")
	p2, d2, _ := sendMessage(70000-65000, "y")
	cs = append(cs, confCase{name: "1.1.9 three messages in one write -> relayed in order", peer: true,
		send: join(textFrame(p1), textFrame(p2), textFrame(p1)), want: []exp{expRelay(d1), expRelay(d2), expRelay(d1)}})
	for _, n := range []int{0, 125, 126, 0xffff, maxMsg} {
		cs = append(cs, confCase{name: fmt.Sprintf("1.2 binary %d bytes -> error reply", n),
			send: binFrame(make([]byte, n)), want: []exp{expReply("error")}})
	}
	return cs
}

func pingCases() []confCase {
	p125 := strings.Repeat("*", 125)
	tenPings := func() []byte {
		var b []byte
		for i := range 10 {
			b = append(b, pingFrame("ping "+strconv.Itoa(i))...)
		}
		return b
	}
	tenPongs := func() []exp {
		var e []exp
		for i := range 10 {
			e = append(e, expPong("ping "+strconv.Itoa(i)))
		}
		return e
	}
	return []confCase{
		{name: "2.1 ping without payload -> pong", send: pingFrame(""), want: []exp{expPong("")}},
		{name: "2.2 ping with text payload -> pong", send: pingFrame("Hello, world!"), want: []exp{expPong("Hello, world!")}},
		{name: "2.3 ping with binary payload -> pong", send: pingFrame("\x00\xff\xfe\xfd\xfc\xfb\x00\xff"), want: []exp{expPong("\x00\xff\xfe\xfd\xfc\xfb\x00\xff")}},
		{name: "2.4 ping with 125-byte payload -> pong", send: pingFrame(p125), want: []exp{expPong(p125)}},
		{name: "2.5 ping with 126-byte payload -> 1002", send: pingFrame(p125 + "*"), want: []exp{expFailed(1002)}},
		{name: "2.6 ping with 125-byte payload byte by byte -> pong", send: pingFrame(p125), chop: 1, want: []exp{expPong(p125)}},
		{name: "2.7 unsolicited pong without payload -> ignored", send: pongFrame("")},
		{name: "2.8 unsolicited pong with payload -> ignored", send: pongFrame("unsolicited pong payload")},
		{name: "2.9 unsolicited pong then ping -> one pong", send: join(pongFrame("unsolicited"), pingFrame("solicited")), want: []exp{expPong("solicited")}},
		{name: "2.10 ten pings -> ten pongs", send: tenPings(), want: tenPongs()},
		{name: "2.11 ten pings in 3-byte writes -> ten pongs", send: tenPings(), chop: 3, want: tenPongs()},
	}
}

func rsvFrame(rsv, op byte, payload string) []byte {
	return maskedFrame(finBit|rsv<<4|op, []byte(payload))
}

var createMsg = `{"type":"create","clientId":"a"}`

func rsvCases() []confCase {
	return []confCase{
		{name: "3.1 RSV=1 text -> 1002", send: rsvFrame(1, opText, "Hello"), want: []exp{expFailed(1002)}},
		{name: "3.2 RSV=2 text after a valid message -> (reply), 1002", send: join(textFrame(createMsg), rsvFrame(2, opText, "Hello")),
			want: []exp{expMaybeReply("created"), expFailed(1002)}},
		{name: "3.3 RSV=3 text after a valid message, byte by byte -> (reply), 1002", send: join(textFrame(createMsg), rsvFrame(3, opText, "Hello")),
			chop: 1, want: []exp{expMaybeReply("created"), expFailed(1002)}},
		{name: "3.4 RSV=4 text then ping -> 1002 and no pong", send: join(rsvFrame(4, opText, "Hello"), pingFrame("")),
			want: []exp{expFailed(1002)}},
		{name: "3.5 RSV=5 binary -> 1002", send: rsvFrame(5, opBinary, "\x00\xff"), want: []exp{expFailed(1002)}},
		{name: "3.6 RSV=6 ping -> 1002", send: rsvFrame(6, opPing, "Hello"), want: []exp{expFailed(1002)}},
		{name: "3.7 RSV=7 close -> 1002", send: rsvFrame(7, opClose, "\x03\xe8"), want: []exp{expFailed(1002)}},
		{name: "3.8 RSV=1 continuation -> 1002", send: join(fragFrame(false, opText, "{"), rsvFrame(1, opCont, "}")), want: []exp{expFailed(1002)}},
	}
}

func opcodeCases() []confCase {
	var cs []confCase
	for _, op := range []byte{3, 4, 5, 6, 7, 11, 12, 13, 14, 15} {
		sec := "4.1"
		if op > 7 {
			sec = "4.2"
		}
		cs = append(cs,
			confCase{name: fmt.Sprintf("%s opcode %d -> 1002", sec, op), send: maskedFrame(finBit|op, nil), want: []exp{expFailed(1002)}},
			confCase{name: fmt.Sprintf("%s opcode %d with payload after a valid message, then ping -> (reply), 1002", sec, op),
				send: join(textFrame(createMsg), maskedFrame(finBit|op, []byte("reserved")), pingFrame("")),
				want: []exp{expMaybeReply("created"), expFailed(1002)}},
		)
	}
	return cs
}

func fragmentationCases() []confCase {
	p, data, _ := sendMessage(200, fill)
	two := join(fragFrame(false, opText, p[:100]), fragFrame(true, opCont, p[100:]))
	var bytewise []byte
	var bytewisePings []byte
	for i := range len(p) {
		op := opCont
		if i == 0 {
			op = opText
		}
		f := fragFrame(i == len(p)-1, op, p[i:i+1])
		bytewise = append(bytewise, f...)
		bytewisePings = append(bytewisePings, f...)
		if i%50 == 0 {
			bytewisePings = append(bytewisePings, pingFrame("p"+strconv.Itoa(i))...)
		}
	}
	var pongs []exp
	for i := 0; i < len(p); i += 50 {
		pongs = append(pongs, expPong("p"+strconv.Itoa(i)))
	}
	big, bigData, _ := sendMessage(maxMsg, fill)
	over, _, _ := sendMessage(maxMsg+1, fill)
	return []confCase{
		{name: "5.1 fragmented ping -> 1002", send: join(fragFrame(false, opPing, "frag"), fragFrame(true, opCont, "ment")), want: []exp{expFailed(1002)}},
		{name: "5.2 fragmented pong -> 1002", send: join(fragFrame(false, opPong, "frag"), fragFrame(true, opCont, "ment")), want: []exp{expFailed(1002)}},
		{name: "5.3 text in 2 fragments -> relayed", peer: true, send: two, want: []exp{expRelay(data)}},
		{name: "5.4 text in 2 fragments, byte by byte -> relayed", peer: true, send: two, chop: 1, want: []exp{expRelay(data)}},
		{name: "5.6 ping between fragments -> pong, relayed", peer: true,
			send: join(fragFrame(false, opText, p[:100]), pingFrame("between"), fragFrame(true, opCont, p[100:])),
			want: []exp{expPong("between"), expRelay(data)}},
		{name: "5.7 ping between fragments, byte by byte -> pong, relayed", peer: true,
			send: join(fragFrame(false, opText, p[:100]), pingFrame("between"), fragFrame(true, opCont, p[100:])),
			chop: 1, want: []exp{expPong("between"), expRelay(data)}},
		{name: "5.8 pong between fragments -> relayed", peer: true,
			send: join(fragFrame(false, opText, p[:100]), pongFrame("between"), fragFrame(true, opCont, p[100:])),
			want: []exp{expRelay(data)}},
		{name: "5.9 final continuation with nothing to continue -> 1002", send: fragFrame(true, opCont, "x"), want: []exp{expFailed(1002)}},
		{name: "5.10 non-final continuation with nothing to continue -> 1002", send: fragFrame(false, opCont, "x"), want: []exp{expFailed(1002)}},
		{name: "5.12 continuation after a complete message -> (reply), 1002",
			send: join(textFrame(createMsg), fragFrame(true, opCont, "x")), want: []exp{expMaybeReply("created"), expFailed(1002)}},
		{name: "5.15 new text frame inside a fragmented message -> 1002",
			send: join(fragFrame(false, opText, p[:100]), fragFrame(true, opText, p[100:])), want: []exp{expFailed(1002)}},
		{name: "5.16 new binary frame inside a fragmented message -> 1002",
			send: join(fragFrame(false, opText, p[:100]), fragFrame(false, opBinary, "x")), want: []exp{expFailed(1002)}},
		{name: "5.17 one byte per fragment -> relayed", peer: true, send: bytewise, want: []exp{expRelay(data)}},
		{name: "5.18 one byte per fragment with pings between -> pongs, relayed", peer: true, send: bytewisePings,
			want: append(pongs, expRelay(data))},
		{name: "5.19 empty fragments -> relayed", peer: true,
			send: join(fragFrame(false, opText, ""), fragFrame(false, opCont, p), fragFrame(false, opCont, ""), fragFrame(true, opCont, "")),
			want: []exp{expRelay(data)}},
		{name: "5.20 fragmented binary -> error reply",
			send: join(fragFrame(false, opBinary, "\x00\x01"), fragFrame(true, opCont, "\x02")), want: []exp{expReply("error")}},
		{name: "5.21 fragmented close -> 1002", send: join(fragFrame(false, opClose, "\x03"), fragFrame(true, opCont, "\xe8")), want: []exp{expFailed(1002)}},
		{name: "5.22 fragmented message at the size limit -> relayed", peer: true,
			send: join(fragFrame(false, opText, big[:40000]), fragFrame(true, opCont, big[40000:])), want: []exp{expRelay(bigData)}},
		{name: "5.23 fragmented message over the size limit -> 1009",
			send: join(fragFrame(false, opText, over[:40000]), fragFrame(true, opCont, over[40000:])), loose: true, want: []exp{expFailed(1009)}},
	}
}

// UTF-8 sequences from Autobahn section 6 (and Markus Kuhn's stress test).
var (
	validUTF8 = []string{
		"κόσμε", "\u0080", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\ufffd", "\ufeff", "\uffff",
		"\U00010000", "\U0010ffff", "Hello-µ@ßöäüàá-UTF-8!!",
	}
	invalidUTF8 = []string{
		"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
		"\x80", "\xbf", "\x80\xbf\x80", "\xc0", "\xc0 ", "\xe0\x80", "\xf0\x80\x80", "\xf8\x88\x80\x80\x80",
		"\xfc\x84\x80\x80\x80\x80", "\xfe", "\xff", "\xfe\xfe\xff\xff", "\xc0\xaf", "\xe0\x80\xaf",
		"\xf0\x80\x80\xaf", "\xc1\xbf", "\xe0\x9f\xbf", "\xf0\x8f\xbf\xbf", "\xed\xa0\x80", "\xed\xbf\xbf",
		"\xed\xa0\x80\xed\xb0\x80", "\xf4\x90\x80\x80", "\xf7\xbf\xbf\xbf", "\xce", "\xe1\x80", "\xf0\x9f\x98",
	}
)

func utf8Cases() []confCase {
	var cs []confCase
	head, tail := `{"type":"send","data":"`, `"}`
	for i, v := range validUTF8 {
		p := head + v + tail
		var frags []byte
		for j := range len(p) {
			op := opCont
			if j == 0 {
				op = opText
			}
			frags = append(frags, fragFrame(j == len(p)-1, op, p[j:j+1])...)
		}
		cs = append(cs,
			confCase{name: fmt.Sprintf("6.1.%d valid %+q whole -> relayed", i, v), peer: true, send: textFrame(p), want: []exp{expRelay(v)}},
			confCase{name: fmt.Sprintf("6.2.%d valid %+q one byte per fragment -> relayed", i, v), peer: true, send: frags, want: []exp{expRelay(v)}},
		)
	}
	for i, v := range invalidUTF8 {
		cs = append(cs,
			confCase{name: fmt.Sprintf("6.3.%d invalid %+q whole -> 1007", i, v), send: textFrame(head + v + tail), want: []exp{expFailed(1007)}},
			confCase{name: fmt.Sprintf("6.4.%d invalid %+q ends the message -> 1007", i, v), send: textFrame(head + v), want: []exp{expFailed(1007)}},
		)
	}
	cs = append(cs,
		confCase{name: "6.5.1 code point split across fragments -> relayed", peer: true,
			send: join(fragFrame(false, opText, head+"a\xce"), fragFrame(true, opCont, "\xbab"+tail)), want: []exp{expRelay("aκb")}},
		confCase{name: "6.5.2 4-byte code point over 4 fragments with a ping -> pong, relayed", peer: true,
			send: join(fragFrame(false, opText, head+"\xf0"), fragFrame(false, opCont, "\x9f"), pingFrame("mid"),
				fragFrame(false, opCont, "\x98"), fragFrame(true, opCont, "\x80"+tail)),
			want: []exp{expPong("mid"), expRelay("😀")}},
		// Fail fast: the message is never finished, the server must not wait for it.
		confCase{name: "6.6.1 invalid byte in an unfinished first fragment -> 1007",
			send: fragFrame(false, opText, head+"ok\xff"), want: []exp{expFailed(1007)}},
		confCase{name: "6.6.2 surrogate in an unfinished middle fragment -> 1007",
			send: join(fragFrame(false, opText, head+"ok"), fragFrame(false, opCont, "\xed\xa0\x80")), want: []exp{expFailed(1007)}},
		confCase{name: "6.6.3 invalid continuation of a split code point, unfinished -> 1007",
			send: join(fragFrame(false, opText, head+"\xce"), fragFrame(false, opCont, "A")), want: []exp{expFailed(1007)}},
		confCase{name: "6.6.4 overlong sequence in an unfinished fragment, byte by byte -> 1007",
			send: fragFrame(false, opText, head+"\xe0\x80\xaf"), chop: 1, want: []exp{expFailed(1007)}},
		// At the end: every fragment is a valid prefix; only the end shows
		// the message is truncated.
		confCase{name: "6.7.1 truncated code point at the end of a fragmented message -> pong, 1007",
			send: join(fragFrame(false, opText, head+"ab\xe2\x82"), pingFrame("still open"), fragFrame(true, opCont, "")),
			want: []exp{expPong("still open"), expFailed(1007)}},
		confCase{name: "6.7.2 truncated code point at the end, byte by byte -> pong, 1007",
			send: join(fragFrame(false, opText, head+"ab"), fragFrame(false, opCont, "\xf0\x9f"), pingFrame("still open"), fragFrame(true, opCont, "\x98")),
			chop: 1, want: []exp{expPong("still open"), expFailed(1007)}},
		confCase{name: "6.8 binary is not UTF-8 checked -> error reply", send: binFrame([]byte("\xff\xfe\xce")), want: []exp{expReply("error")}},
	)
	return cs
}

func closeCases() []confCase {
	cs := []confCase{
		{name: "7.1.1 message then close -> reply, 1000", send: join(textFrame(createMsg), closeFrame(1000, "")),
			want: []exp{expReply("created"), expEchoed(1000)}},
		{name: "7.1.2 two closes -> one close", send: join(closeFrame(1000, ""), closeFrame(1000, "")), want: []exp{expEchoed(1000)}},
		{name: "7.1.3 ping after close -> no pong", send: join(closeFrame(1000, ""), pingFrame("after close")), want: []exp{expEchoed(1000)}},
		{name: "7.1.4 message after close -> ignored", send: join(closeFrame(1000, ""), textFrame(createMsg)), want: []exp{expEchoed(1000)}},
		{name: "7.1.5 message after close -> not relayed", peer: true, send: join(closeFrame(1000, ""), textFrame(`{"type":"send","data":"after close"}`)),
			want: []exp{expEchoed(1000), expPeerLeft()}},
		{name: "7.1.6 close inside a fragmented message -> 1000, not relayed", peer: true,
			send: join(fragFrame(false, opText, `{"type":"send",`), closeFrame(1000, ""), fragFrame(true, opCont, `"data":1}`)),
			want: []exp{expEchoed(1000), expPeerLeft()}},
		{name: "7.3.1 close without payload -> empty close", send: emptyCloseFrame(), want: []exp{expEchoed(0)}},
		{name: "7.3.2 close with 1-byte payload -> 1002", send: maskedFrame(finBit|opClose, []byte{0x03}), want: []exp{expFailed(1002)}},
		{name: "7.3.3 close 1000 without reason -> 1000", send: closeFrame(1000, ""), want: []exp{expEchoed(1000)}},
		{name: "7.3.4 close 1000 with reason -> 1000", send: closeFrame(1000, "Hello World!"), want: []exp{expEchoed(1000)}},
		{name: "7.3.5 close with 123-byte reason -> 1000", send: closeFrame(1000, strings.Repeat("*", 123)), want: []exp{expEchoed(1000)}},
		{name: "7.3.6 close with 124-byte reason (126-byte payload) -> 1002", send: closeFrame(1000, strings.Repeat("*", 124)), want: []exp{expFailed(1002)}},
		{name: "7.5.1 close reason with invalid UTF-8 -> 1007", send: closeFrame(1000, "\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"),
			want: []exp{expFailed(1007)}},
		{name: "7.5.2 close reason with a truncated code point -> 1007", send: closeFrame(1000, "bye\xce"), want: []exp{expFailed(1007)}},
		{name: "7.6 close reason with valid UTF-8 -> 1000", send: closeFrame(1000, "κόσμε \U0010ffff"), want: []exp{expEchoed(1000)}},
	}
	for _, code := range []uint16{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999} {
		cs = append(cs, confCase{name: fmt.Sprintf("7.7 valid code %d -> %d", code, code), send: closeFrame(code, "reason"), want: []exp{expEchoed(code)}})
	}
	for _, code := range []uint16{0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535} {
		cs = append(cs, confCase{name: fmt.Sprintf("7.9 invalid code %d -> 1002", code), send: closeFrame(code, ""), want: []exp{expFailed(1002)}})
	}
	return cs
}

func limitCases() []confCase {
	over := maskedFrame(finBit|opText, make([]byte, maxMsg+1))
	hdr := over[:2+8+4] // 64-bit length and the mask: the header alone
	return []confCase{
		{name: "9.1 text over --max-message-size, header only -> 1009", send: hdr, want: []exp{expFailed(1009)}},
		{name: "9.2 text over --max-message-size, whole -> 1009", send: over, loose: true, want: []exp{expFailed(1009)}},
		{name: "9.3 binary claiming 2^62 bytes -> 1009", send: []byte{0x82, 0xff, 0x40, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4}, want: []exp{expFailed(1009)}},
		{name: "9.4 64-bit length with the top bit set -> 1002", send: []byte{0x82, 0xff, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4}, want: []exp{expFailed(1002)}},
		{name: "9.5 unmasked text -> 1002", send: unmaskedFrame(finBit|opText, []byte(createMsg)), want: []exp{expFailed(1002)}},
		{name: "9.6 unmasked ping -> 1002", send: unmaskedFrame(finBit|opPing, []byte("x")), want: []exp{expFailed(1002)}},
		{name: "9.7 unmasked close -> 1002", send: unmaskedFrame(finBit|opClose, []byte{3, 0xe8}), want: []exp{expFailed(1002)}},
		{name: "9.8 unmasked frame after a valid message -> (reply), 1002", send: join(textFrame(createMsg), unmaskedFrame(finBit|opText, []byte("x"))),
			want: []exp{expMaybeReply("created"), expFailed(1002)}},
	}
}

// The size limit is configurable.
func TestConformanceMaxMessageSize(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) { c.PingInterval = 0; c.MaxMessageSize = 1000 })
	addr := s.Addrs()[0].String()
	at, atData, _ := sendMessage(1000, fill)
	over, _, _ := sendMessage(1001, fill)
	runCases(t, addr, []confCase{
		{name: "1000 bytes with a 1000-byte limit -> relayed", peer: true, send: textFrame(at), want: []exp{expRelay(atData)}},
		{name: "1001 bytes with a 1000-byte limit -> 1009", send: textFrame(over), want: []exp{expFailed(1009)}},
		{name: "600+401 bytes in fragments with a 1000-byte limit -> 1009",
			send: join(fragFrame(false, opText, over[:600]), fragFrame(true, opCont, over[600:])), want: []exp{expFailed(1009)}},
	})
}

// Keepalive: the server pings every interval; a client that does not answer
// is closed by the next ping, one that answers stays.
func TestKeepalive(t *testing.T) {
	const interval = 200 * time.Millisecond
	s := testutil.Start(t, func(c *server.Config) { c.PingInterval = interval })
	addr := s.Addrs()[0].String()

	t.Run("silent client is closed within two intervals", func(t *testing.T) {
		t.Parallel()
		c := dialWS(t, addr, "/party")
		start := time.Now()
		f := c.next()
		if f.op != opPing {
			t.Fatalf("got %v, want the server's ping", f)
		}
		if d := time.Since(start); d > interval+250*time.Millisecond {
			t.Fatalf("first ping after %v, want within one interval (%v)", d, interval)
		}
		pinged := time.Now()
		f = c.next() // the next ping time finds ours unanswered: the close, not another ping
		if f.op != opClose {
			t.Fatalf("got %v, want a close after the unanswered ping", f)
		}
		if d := time.Since(pinged); d > 2*interval+250*time.Millisecond {
			t.Fatalf("closed %v after the unanswered ping, want within 2 intervals (%v)", d, 2*interval)
		}
		if code := f.closeCode(); code != 1001 {
			t.Fatalf("close code %d, want 1001 (ping timeout)", code)
		}
		c.expectEOF()
	})

	t.Run("answering client stays open", func(t *testing.T) {
		t.Parallel()
		c := dialWS(t, addr, "/party")
		const pings = 5
		deadline := time.Now().Add(pings*interval + time.Second)
		for n := 0; n < pings; n++ {
			f, err := c.readFrame(time.Until(deadline))
			if err != nil {
				t.Fatalf("after %d pings: %v", n, err)
			}
			if f.op != opPing {
				t.Fatalf("after %d pings: got %v", n, f)
			}
			c.write(pongFrame(string(f.payload)))
		}
		c.write(pingFrame("mine"))
		if f := c.nextData(); f.op != opPong || string(f.payload) != "mine" {
			t.Fatalf("got %v, want pong", f)
		}
		c.send(map[string]any{"type": "create", "clientId": "still-here"})
		if f := c.nextData(); f.op != opText || !strings.Contains(string(f.payload), `"created"`) {
			t.Fatalf("got %v, want created", f)
		}
	})

	t.Run("client sending data instead of pongs stays open", func(t *testing.T) {
		t.Parallel()
		c := dialWS(t, addr, "/party")
		stop := time.Now().Add(4 * interval)
		pings := 0
		for time.Now().Before(stop) {
			c.write(textFrame("not json")) // any frame counts as an answer
			for {
				f := c.next()
				if f.op == opPing {
					pings++
					continue
				}
				if f.op != opText {
					t.Fatalf("after %d pings: got %v", pings, f)
				}
				break
			}
			time.Sleep(interval / 4)
		}
		if pings < 2 {
			t.Fatalf("%d pings in %v, want at least 2", pings, 4*interval)
		}
	})
}

// dialSmallWindow connects with a small receive buffer, so that a client
// that does not read fills up quickly.
func dialSmallWindow(t *testing.T, addr string) *rawClient {
	t.Helper()
	d := net.Dialer{Timeout: ioWait, Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	c := &rawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
	req, key := upgradeRequest(addr, "/party")
	c.write(req)
	resp := c.readResponse()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("HTTP %d", resp.StatusCode)
	}
	c.checkUpgrade(resp, key)
	return c
}

// metric returns the value of the first sample of the named metric.
func metric(t *testing.T, s *server.Server, name string) float64 {
	t.Helper()
	v, ok := sample(t, s, name, "")
	if !ok {
		t.Fatalf("metric %s not found", name)
	}
	return v
}

// A client that never reads while its room floods it is closed as a slow
// consumer; the others get every message. The cap is 256 KiB, not less:
// one 64 KiB read of a fast sender is relayed to every member within one
// loop pass, and a connection's queue between two passes may not exceed the
// cap (it bounds memory), so a cap near 64 KiB would drop healthy readers.
func TestSlowConsumer(t *testing.T) {
	const outCap = 256 << 10
	const msgSize = 4 << 10
	// A long close wait: the server keeps draining the slow client's backlog
	// after its 1008 close frame, so a client that reads again gets it.
	s := testutil.Start(t, func(c *server.Config) {
		c.PingInterval, c.OutboundCap, c.CloseWait = 0, outCap, 10*time.Second
	})
	addr := s.Addrs()[0].String()

	a := dialWS(t, addr, "/party")
	room := a.createRoom("a")
	slow := dialSmallWindow(t, addr)
	slow.joinRoom(room, "slow")
	a.expectJSON("peer_joined")
	c := dialWS(t, addr, "/party")
	c.joinRoom(room, "c")
	a.expectJSON("peer_joined")
	slow.expectJSON("peer_joined") // the last thing slow reads until the end

	// c reads everything on its own goroutine (no t methods there).
	var got, peerLeft atomic.Int64
	readErr := make(chan error, 1)
	go func() {
		for {
			f, err := c.readFrame(time.Minute)
			if err != nil {
				readErr <- err
				return
			}
			switch p := string(f.payload); {
			case f.op == opText && strings.Contains(p, `"type":"message"`):
				got.Add(1)
			case f.op == opText && strings.Contains(p, `"type":"peer_left"`) && strings.Contains(p, `"slow"`):
				peerLeft.Add(1)
			default:
				readErr <- fmt.Errorf("unexpected %v", f)
				return
			}
		}
	}()

	msg, _, _ := sendMessage(msgSize, fill)
	frame := textFrame(msg)
	deadline := time.Now().Add(20 * time.Second)
	sent := int64(0)
	for metric(t, s, "partyline_slow_consumer_closes_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatalf("no slow-consumer close after %d messages of %d bytes", sent, msgSize)
		}
		for range 16 {
			a.write(frame)
			sent++
		}
	}
	t.Logf("slow consumer closed after %d messages of %d bytes", sent, msgSize)
	if sent*msgSize > 64<<20 {
		t.Errorf("took %d MiB to detect: memory is not bounded by the %d KiB cap", sent*msgSize>>20, outCap>>10)
	}

	// The others are unaffected: c gets every message and the departure.
	for got.Load() != sent || peerLeft.Load() != 1 {
		select {
		case err := <-readErr:
			t.Fatalf("other member after %d of %d messages: %v", got.Load(), sent, err)
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline.Add(10 * time.Second)) {
			t.Fatalf("other member got %d of %d messages, peer_left %d", got.Load(), sent, peerLeft.Load())
		}
	}
	_ = c.conn.SetReadDeadline(time.Now()) // stop the reader between frames
	if err := <-readErr; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("other member: %v", err)
	}
	if id := a.expectJSON("peer_left").str("clientId"); id != "slow" {
		t.Fatalf("sender: peer_left %q, want slow", id)
	}
	a.alive()
	c.alive()

	// The slow client, reading again within the close wait, gets what was
	// already on its way, then the 1008 close frame.
	_ = slow.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		f, err := slow.readFrame(10 * time.Second)
		if err != nil {
			t.Fatalf("slow client: want a 1008 close frame, got %v", err)
		}
		if f.op == opClose {
			if f.closeCode() != 1008 {
				t.Fatalf("slow client closed with %d, want 1008", f.closeCode())
			}
			break
		}
	}
	if n := metric(t, s, "partyline_slow_consumer_closes_total"); n != 1 {
		t.Fatalf("%v slow-consumer closes, want 1", n)
	}
}

// Graceful shutdown closes every connection with 1001 within the drain
// window and refuses new ones.
func TestGracefulShutdown(t *testing.T) {
	cfg := server.Defaults()
	cfg.Listeners = []server.Listener{{Addr: "127.0.0.1:0"}}
	cfg.HTTPAddr = ""
	cfg.DataDir = t.TempDir()
	cfg.Drain = 300 * time.Millisecond
	cfg.CloseWait = 200 * time.Millisecond
	cfg.PingInterval = 0
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := assemble.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ran := make(chan error, 1)
	go func() { ran <- s.Run(ctx) }()
	select {
	case <-s.Ready():
	case err := <-ran:
		t.Fatalf("Run: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server not ready")
	}
	addr := s.Addrs()[0].String()
	a, b := pairUp(t, addr)
	idle := dialWS(t, addr, "/party")

	start := time.Now()
	cancel()
	for _, c := range []*rawClient{a, b, idle} {
		for {
			f := c.next()
			if f.op == opText && strings.Contains(string(f.payload), `"peer_left"`) {
				continue // a room member may see the other leave first
			}
			if f.op != opClose || f.closeCode() != 1001 {
				t.Fatalf("got %v, want close 1001", f)
			}
			break
		}
		_, _ = c.conn.Write(closeFrame(1001, ""))
		c.expectEOF()
	}
	if d := time.Since(start); d > cfg.Drain+time.Second {
		t.Fatalf("connections closed after %v, drain window %v", d, cfg.Drain)
	}
	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after the drain")
	}
	// Stopped: a new connection is refused or closed without an upgrade.
	if conn, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		defer conn.Close()
		req, _ := upgradeRequest(addr, "/party")
		_, _ = conn.Write(req)
		_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(conn), nil); err == nil {
			t.Fatalf("after shutdown: HTTP %d", resp.StatusCode)
		}
	}
}
