package server_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
)

// This file is a raw RFC 6455 client for the conformance tests: it builds
// frames byte by byte and parses the server's frames itself, so that the
// tests do not trust the codec they test.

// Opcodes.
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xa
	finBit   byte = 0x80
)

// ioWait bounds every read and write of a raw client.
const ioWait = 5 * time.Second

// maskedFrame encodes a client frame: b0 is the first header byte (FIN,
// RSV and opcode), the payload is masked with a random key.
func maskedFrame(b0 byte, payload []byte) []byte {
	var key [4]byte
	_, _ = rand.Read(key[:])
	return frameWith(b0, payload, key[:])
}

// unmaskedFrame encodes a frame without a mask (invalid from a client).
func unmaskedFrame(b0 byte, payload []byte) []byte { return frameWith(b0, payload, nil) }

func frameWith(b0 byte, payload, key []byte) []byte {
	var m byte
	if key != nil {
		m = 0x80
	}
	b := []byte{b0}
	switch n := len(payload); {
	case n <= 125:
		b = append(b, m|byte(n))
	case n <= 0xffff:
		b = append(b, m|126, byte(n>>8), byte(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	b = append(b, key...)
	start := len(b)
	b = append(b, payload...)
	for i := range payload {
		if key != nil {
			b[start+i] ^= key[i%4]
		}
	}
	return b
}

// Shorthands for whole masked frames.
func textFrame(s string) []byte { return maskedFrame(finBit|opText, []byte(s)) }
func binFrame(p []byte) []byte  { return maskedFrame(finBit|opBinary, p) }
func fragFrame(fin bool, op byte, s string) []byte {
	if fin {
		op |= finBit
	}
	return maskedFrame(op, []byte(s))
}
func pingFrame(p string) []byte { return maskedFrame(finBit|opPing, []byte(p)) }
func pongFrame(p string) []byte { return maskedFrame(finBit|opPong, []byte(p)) }

// closeFrame is a close frame with code and reason; emptyCloseFrame has no
// payload at all.
func closeFrame(code uint16, reason string) []byte {
	return maskedFrame(finBit|opClose, append(binary.BigEndian.AppendUint16(nil, code), reason...))
}
func emptyCloseFrame() []byte { return maskedFrame(finBit|opClose, nil) }

// join concatenates frames into one write.
func join(frames ...[]byte) []byte { return bytes.Join(frames, nil) }

// upgradeRequest is a valid client handshake for path; extra header lines
// ("Name: value") are added before the blank line.
func upgradeRequest(host, path string, extra ...string) (req []byte, key string) {
	var k [16]byte
	_, _ = rand.Read(k[:])
	key = base64.StdEncoding.EncodeToString(k[:])
	var b strings.Builder
	fmt.Fprintf(&b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n", path, host)
	fmt.Fprintf(&b, "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", key)
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	b.WriteString("\r\n")
	return []byte(b.String()), key
}

func acceptKey(key string) string {
	h := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	return base64.StdEncoding.EncodeToString(h[:])
}

// rawClient is one TCP connection driven byte by byte.
type rawClient struct {
	t       testing.TB
	conn    net.Conn
	br      *bufio.Reader
	pending []sframe // pushed back, read again first
}

// pushBack makes f the next frame read.
func (c *rawClient) pushBack(f sframe) { c.pending = append(c.pending, f) }

// dialTCP opens a plain TCP connection to addr.
func dialTCP(t testing.TB, addr string) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, ioWait)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, br: bufio.NewReader(conn)}
}

// dialWS connects to addr and upgrades on path, failing the test unless the
// server answers 101 with the right accept key.
func dialWS(t testing.TB, addr, path string, extra ...string) *rawClient {
	t.Helper()
	c := dialTCP(t, addr)
	req, key := upgradeRequest(addr, path, extra...)
	c.write(req)
	resp := c.readResponse()
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade %s: HTTP %d, want 101", path, resp.StatusCode)
	}
	c.checkUpgrade(resp, key)
	return c
}

func (c *rawClient) checkUpgrade(resp *http.Response, key string) {
	c.t.Helper()
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") ||
		!strings.Contains(strings.ToLower(resp.Header.Get("Connection")), "upgrade") {
		c.t.Fatalf("101 without Upgrade/Connection headers: %v", resp.Header)
	}
	if got := resp.Header.Get("Sec-WebSocket-Accept"); got != acceptKey(key) {
		c.t.Fatalf("Sec-WebSocket-Accept %q, want %q", got, acceptKey(key))
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		c.t.Fatalf("server negotiated extensions %q nobody asked for", ext)
	}
}

// readResponse reads one HTTP response head (and its body, unless 101).
func (c *rawClient) readResponse() *http.Response {
	c.t.Helper()
	resp, err := c.tryResponse(ioWait)
	if err != nil {
		c.t.Fatalf("read HTTP response: %v", err)
	}
	return resp
}

func (c *rawClient) tryResponse(d time.Duration) (*http.Response, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return resp, fmt.Errorf("HTTP %d body: %w", resp.StatusCode, err)
		}
		resp.Body = io.NopCloser(bytes.NewReader(body))
	}
	return resp, nil
}

// write sends b in one write.
func (c *rawClient) write(b []byte) {
	c.t.Helper()
	_ = c.conn.SetWriteDeadline(time.Now().Add(ioWait))
	if _, err := c.conn.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// writeChopped sends b in pieces of n bytes, each its own TCP segment,
// pausing briefly between pieces so that the server reads them apart. It
// stops when the server has closed the connection: a server that fails
// the connection on a violation hangs up without reading what follows.
func (c *rawClient) writeChopped(b []byte, n int) {
	c.t.Helper()
	for len(b) > 0 {
		k := min(n, len(b))
		_ = c.conn.SetWriteDeadline(time.Now().Add(ioWait))
		if _, err := c.conn.Write(b[:k]); err != nil {
			if errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNRESET) {
				return
			}
			c.t.Fatalf("write: %v", err)
		}
		b = b[k:]
		if len(b) > 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

// sframe is a frame the server sent.
type sframe struct {
	fin     bool
	rsv     byte
	op      byte
	masked  bool
	payload []byte
}

func (f sframe) String() string {
	p := f.payload
	if len(p) > 80 {
		p = p[:80]
	}
	return fmt.Sprintf("frame{fin %v rsv %d op %d masked %v %d bytes %q}", f.fin, f.rsv, f.op, f.masked, len(f.payload), p)
}

// closeCode returns the status code of a close frame, 0 when it has none.
func (f sframe) closeCode() uint16 {
	if len(f.payload) < 2 {
		return 0
	}
	return binary.BigEndian.Uint16(f.payload)
}

// readFrame reads one frame within d.
func (c *rawClient) readFrame(d time.Duration) (sframe, error) {
	if n := len(c.pending); n > 0 {
		f := c.pending[n-1]
		c.pending = c.pending[:n-1]
		return f, nil
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(d))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return sframe{}, err
	}
	f := sframe{fin: h[0]&0x80 != 0, rsv: h[0] >> 4 & 7, op: h[0] & 0xf, masked: h[1]&0x80 != 0}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 16<<20 {
		return f, fmt.Errorf("frame of %d bytes", n)
	}
	var key [4]byte
	if f.masked {
		if _, err := io.ReadFull(c.br, key[:]); err != nil {
			return f, err
		}
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, f.payload); err != nil {
		return f, err
	}
	if f.masked {
		for i := range f.payload {
			f.payload[i] ^= key[i%4]
		}
	}
	return f, nil
}

// next returns the next frame and checks that it is a well-formed server
// frame: unmasked, no reserved bits, a known opcode, control frames short,
// final and with a valid close payload, text valid UTF-8.
func (c *rawClient) next() sframe {
	c.t.Helper()
	f, err := c.readFrame(ioWait)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	switch {
	case f.masked:
		c.t.Fatalf("server sent a masked frame: %v", f)
	case f.rsv != 0:
		c.t.Fatalf("server set reserved bits: %v", f)
	case f.op > opBinary && f.op != opClose && f.op != opPing && f.op != opPong:
		c.t.Fatalf("server used a reserved opcode: %v", f)
	case f.op >= opClose && (!f.fin || len(f.payload) > 125):
		c.t.Fatalf("server sent an invalid control frame: %v", f)
	case f.op == opClose && len(f.payload) == 1:
		c.t.Fatalf("server sent a 1-byte close payload")
	case f.op == opClose && len(f.payload) >= 2 && !utf8.Valid(f.payload[2:]):
		c.t.Fatalf("server sent an invalid UTF-8 close reason: %v", f)
	case f.op == opText && !utf8.Valid(f.payload):
		c.t.Fatalf("server sent invalid UTF-8 text: %v", f)
	case f.op != opCont && f.op <= opBinary && !f.fin:
		c.t.Fatalf("server fragmented a message: %v", f) // not wrong, but our reader expects whole messages
	}
	return f
}

// msg is a decoded JSON message.
type msg map[string]any

func (m msg) str(k string) string { s, _ := m[k].(string); return s }

// expectJSON reads the next frame, which must be a text frame holding a
// JSON object of the given type.
func (c *rawClient) expectJSON(typ string) msg {
	c.t.Helper()
	f := c.next()
	if f.op != opText {
		c.t.Fatalf("got %v, want a %q message", f, typ)
	}
	var m msg
	if err := json.Unmarshal(f.payload, &m); err != nil {
		c.t.Fatalf("not JSON: %q: %v", f.payload, err)
	}
	if m.str("type") != typ {
		c.t.Fatalf("got %s, want type %q", f.payload, typ)
	}
	return m
}

// expectPong reads the next frame, which must be a pong carrying payload.
func (c *rawClient) expectPong(payload string) {
	c.t.Helper()
	f := c.next()
	if f.op != opPong || string(f.payload) != payload {
		c.t.Fatalf("got %v, want pong %q", f, payload)
	}
}

// expectClose reads the next frame, which must be a close frame with code
// (0: an empty close payload). When the server initiated the close the
// client answers it; either way the server must then close the TCP
// connection without sending anything more.
func (c *rawClient) expectClose(code uint16, answer bool) sframe {
	c.t.Helper()
	f := c.next()
	if f.op != opClose {
		c.t.Fatalf("got %v, want close %d", f, code)
	}
	if got := f.closeCode(); got != code {
		c.t.Fatalf("close code %d (reason %q), want %d", got, f.payload[min(2, len(f.payload)):], code)
	}
	if answer {
		_ = c.conn.SetWriteDeadline(time.Now().Add(ioWait))
		_, _ = c.conn.Write(closeFrame(1000, "")) // the server may already be gone
	}
	c.expectEOF()
	return f
}

// expectEOF checks that the server closes the connection without sending
// anything more.
func (c *rawClient) expectEOF() {
	c.t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(ioWait))
	b, err := io.ReadAll(c.br)
	if len(b) > 0 {
		c.t.Fatalf("%d more bytes after the close: %q", len(b), b[:min(len(b), 80)])
	}
	if err != nil && !isClosed(err) {
		c.t.Fatalf("want the connection closed, got %v", err)
	}
}

func isClosed(err error) bool {
	return err == nil || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, net.ErrClosed)
}

// alive checks that the connection is open and in sync: a ping with a
// fresh payload is answered by a pong carrying it.
func (c *rawClient) alive() {
	c.t.Helper()
	var p [8]byte
	_, _ = rand.Read(p[:])
	payload := base64.RawURLEncoding.EncodeToString(p[:])
	c.write(pingFrame(payload))
	c.expectPong(payload)
}

// nextData returns the next frame that is not a ping, answering the
// server's keepalive pings on the way.
func (c *rawClient) nextData() sframe {
	c.t.Helper()
	for {
		f := c.next()
		if f.op != opPing {
			return f
		}
		c.write(pongFrame(string(f.payload)))
	}
}

// send writes one JSON text message.
func (c *rawClient) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	c.write(textFrame(string(b)))
}

// createRoom creates a party room as clientID and returns its code.
func (c *rawClient) createRoom(clientID string) string {
	c.t.Helper()
	c.send(map[string]any{"type": "create", "clientId": clientID})
	return c.expectJSON("created").str("room")
}

// joinRoom joins room as clientID.
func (c *rawClient) joinRoom(room, clientID string) {
	c.t.Helper()
	c.send(map[string]any{"type": "join", "room": room, "clientId": clientID})
	c.expectJSON("joined")
}

// pairUp returns two clients in one party room: a ("a") and b ("b").
func pairUp(t testing.TB, addr string) (a, b *rawClient) {
	t.Helper()
	a = dialWS(t, addr, "/party")
	room := a.createRoom("a")
	b = dialWS(t, addr, "/party")
	b.joinRoom(room, "b")
	if id := a.expectJSON("peer_joined").str("clientId"); id != "b" {
		t.Fatalf("peer_joined %q, want b", id)
	}
	return a, b
}

// sendMessage is a party "send" of exactly n bytes whose data is a string
// made of fill (repeated and cut to fit); ok is false when n is too small.
func sendMessage(n int, fill string) (payload, data string, ok bool) {
	const base = len(`{"type":"send","data":""}`)
	if n < base {
		return "", "", false
	}
	var b strings.Builder
	for b.Len() < n-base {
		b.WriteString(fill)
	}
	data = b.String()[:n-base]
	return `{"type":"send","data":"` + data + `"}`, data, true
}

// expectRelay reads the next frame, which must be a party message from
// "a" whose data is the JSON string data.
func (c *rawClient) expectRelay(data string) {
	c.t.Helper()
	m := c.expectJSON("message")
	got, ok := m["data"].(string)
	if m.str("from") != "a" || !ok || got != data {
		c.t.Fatalf("relayed from %q: %d bytes (%.40q...), want %d bytes (%.40q...)", m.str("from"), len(got), got, len(data), data)
	}
}
