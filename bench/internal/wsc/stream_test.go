package wsc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"partyline/codec"
)

// streamServer accepts one WebSocket connection per client and writes
// frames of sizes from 1 byte to 200 KiB in random chunks, so that frames
// straddle reads and gnet's inbound buffer.
func streamServer(t *testing.T, frames int) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go serveStream(nc, frames)
		}
	}()
	return ln.Addr().String()
}

func serveStream(nc net.Conn, frames int) {
	defer nc.Close()
	br := bufio.NewReader(nc)
	req, err := http.ReadRequest(br)
	if err != nil {
		return
	}
	h := sha1.Sum([]byte(req.Header.Get("Sec-WebSocket-Key") + wsGUID))
	fmt.Fprintf(nc, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
		base64.StdEncoding.EncodeToString(h[:]))
	rng := rand.New(rand.NewPCG(1, 2))
	var out []byte
	for i := range frames {
		n := 1 + rng.IntN(300)
		if i%7 == 0 {
			n = 60<<10 + rng.IntN(140<<10)
		}
		out = codec.AppendFrame(out, true, codec.OpText, payload(i, n))
	}
	out = codec.AppendClose(out, 1000, "done")
	for len(out) > 0 {
		k := min(len(out), 1+rng.IntN(100<<10))
		if _, err := nc.Write(out[:k]); err != nil {
			return
		}
		out = out[k:]
	}
	_, _ = br.ReadByte() // wait for the client's close
}

func payload(i, n int) []byte {
	p := bytes.Repeat([]byte{'a' + byte(i%26)}, n)
	copy(p, fmt.Sprintf("%d:", i))
	return p
}

type recorder struct {
	mu     sync.Mutex
	got    int
	bad    string
	closed chan struct{}
}

func (r *recorder) Open(*Conn) {}
func (r *recorder) Message(_ *Conn, p []byte, _ int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	want := payload(r.got, len(p))
	if !bytes.Equal(p, want) && r.bad == "" {
		r.bad = fmt.Sprintf("message %d (%d bytes) differs: %.20q", r.got, len(p), p)
	}
	r.got++
}
func (r *recorder) Close(c *Conn, err error) {
	r.mu.Lock()
	if c.CloseCode != 1000 && r.bad == "" {
		r.bad = fmt.Sprintf("closed with %d, %v after %d messages", c.CloseCode, err, r.got)
	}
	r.mu.Unlock()
	close(r.closed)
}

func TestStreamAcrossReads(t *testing.T) {
	frames, conns := 300, 8
	if raceEnabled {
		frames, conns = 70, 4
	}
	addr := streamServer(t, frames)
	e, err := New(Config{Addr: addr, Loops: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	recs := make([]*recorder, conns)
	for i := range recs {
		recs[i] = &recorder{closed: make(chan struct{})}
		if err := e.Dial(context.Background(), &Conn{H: recs[i], Path: "/"}); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range recs {
		select {
		case <-r.closed:
		case <-time.After(60 * time.Second):
			r.mu.Lock()
			got := r.got
			r.mu.Unlock()
			t.Fatalf("conn %d: timeout after %d messages", i, got)
		}
		if r.bad != "" || r.got != frames {
			t.Fatalf("conn %d: got %d of %d: %s", i, r.got, frames, r.bad)
		}
	}
}
