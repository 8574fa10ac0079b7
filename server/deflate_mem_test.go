//go:build !race

package server_test

import (
	"bytes"
	"runtime"
	"strings"
	"testing"

	"partyline/server"
)

// An idle connection that negotiated permessage-deflate and exchanged
// compressed messages holds no more memory than one that did not: no
// inflater or deflater state stays with it (no context takeover, pooled
// compressors). Measured as the live heap after a GC, client and server in
// this process, per connection, plain against compressed.
func TestDeflateIdleMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("opens 2,000 connections")
	}
	const n = 1000
	addr := startCompressing(t, func(c *server.Config) { c.MaxPending = 4 * n })
	msg := []byte(strings.Repeat("compressible message ", 30))
	z := deflate(t, msg)
	perConn := func(offer string) float64 {
		heap := func() uint64 {
			runtime.GC()
			runtime.GC()
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			return m.HeapAlloc
		}
		before := heap()
		cs := make([]*rawClient, n)
		for i := range cs {
			c, ext := dialOffer(t, addr, "/wsecho", offer)
			if (ext != "") != (offer != "") {
				t.Fatalf("answer %q to %q", ext, offer)
			}
			rsv1 := offer != ""
			body := msg
			if rsv1 {
				body = z
			}
			c.write(zframe(true, rsv1, opText, body))
			if _, compressed, p := c.readMessage(); compressed != rsv1 || !bytes.Equal(p, msg) {
				t.Fatalf("echo: compressed %v, %d bytes", compressed, len(p))
			}
			cs[i] = c
		}
		after := heap()
		runtime.KeepAlive(cs)
		return float64(int64(after)-int64(before)) / n
	}
	plain := perConn("")
	deflated := perConn("permessage-deflate")
	t.Logf("live heap per idle connection (client and server): plain %.0f B, permessage-deflate %.0f B", plain, deflated)
	if deflated > plain+256 {
		t.Fatalf("a connection that negotiated compression holds %.0f B more", deflated-plain)
	}
}
