package wsecho_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"partyline/internal/testutil"
	"partyline/server"
)

const maxMsg = 4096

func startEcho(t *testing.T) *server.Server {
	return testutil.Start(t, func(c *server.Config) {
		c.MaxMessageSize = maxMsg
		c.Listeners = append(c.Listeners, server.Listener{Addr: "127.0.0.1:0", Dialect: "wsecho"})
	})
}

func roundTrip(t *testing.T, c *testutil.Client, typ int, p []byte) {
	t.Helper()
	_ = c.Conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if err := c.Conn.WriteMessage(typ, p); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = c.Conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	gt, got, err := c.Conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	if gt != typ || !bytes.Equal(got, p) {
		t.Fatalf("echo: type %d, %d bytes; want type %d, %d bytes", gt, len(got), typ, len(p))
	}
}

// Every message comes back as it was sent, on the path-routed listener
// (/wsecho) and on a listener bound to wsecho (any path), with no welcome.
func TestEchoesExactly(t *testing.T) {
	t.Parallel()
	s := startEcho(t)
	binary := make([]byte, maxMsg)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	cases := []struct {
		name string
		typ  int
		p    []byte
	}{
		{"empty text", websocket.TextMessage, nil},
		{"empty binary", websocket.BinaryMessage, nil},
		{"text, not JSON", websocket.TextMessage, []byte("hello, κόσμε")},
		{"JSON is not wrapped", websocket.TextMessage, []byte(`{"type":"x"}`)},
		{"binary with every byte value", websocket.BinaryMessage, binary[:256]},
		{"126 bytes (16-bit length)", websocket.BinaryMessage, binary[:126]},
		{"at --max-message-size", websocket.BinaryMessage, binary},
		{"text at --max-message-size", websocket.TextMessage, []byte(strings.Repeat("é", maxMsg/2))},
	}
	for _, url := range []string{testutil.URL(s, 0, "/wsecho"), testutil.URL(s, 1, "/any/path")} {
		c := testutil.Dial(t, url)
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) { roundTrip(t, c, tc.typ, tc.p) })
		}
		// No welcome or anything else unasked.
		_ = c.Conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, b, err := c.Conn.ReadMessage(); err == nil {
			t.Fatalf("unasked message %q", b)
		}
	}
}

// A fragmented message is echoed whole once its last fragment arrives.
func TestEchoesFragmented(t *testing.T) {
	t.Parallel()
	s := startEcho(t)
	d := websocket.Dialer{WriteBufferSize: 64} // gorilla fragments what does not fit
	conn, _, err := d.Dial(testutil.URL(s, 0, "/wsecho"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	roundTrip(t, &testutil.Client{Conn: conn}, websocket.TextMessage, []byte(strings.Repeat("fragment ", 300)))
}

// Over --max-message-size the connection is closed with 1009.
func TestOverMaxMessageSize(t *testing.T) {
	t.Parallel()
	s := startEcho(t)
	c := testutil.Dial(t, testutil.URL(s, 0, "/wsecho"))
	if err := c.Conn.WriteMessage(websocket.BinaryMessage, make([]byte, maxMsg+1)); err != nil {
		t.Fatal(err)
	}
	c.ExpectClose(websocket.CloseMessageTooBig)
}
