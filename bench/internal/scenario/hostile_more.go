package scenario

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"partyline/bench/internal/dialect"
	"partyline/codec"
)

// The attacks of issue #17's "Measure" list, beside those in hostile.go.
// Each runs in goroutines of its own from the moment the rooms are set up
// until the window ends (h.stop), bounded in count by its flag; all of
// them target loopback addresses only (checked when the flags are parsed).

// scanAlphabet is the party room-code alphabet (no 0/O, 1/I/L).
const scanAlphabet = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"

// scanWindow is how many joins a scanner has in flight.
const scanWindow = 16

// moreHostile holds the counters of the attacks in this file.
type moreHostile struct {
	scanJoins, scanConnects         atomic.Int64
	scanHits, scanMisses, scanOther atomic.Int64 // replies: room found (joined or full), not found, anything else

	silentConnects atomic.Int64
	silentHeld     latencies // connect to server close

	incompleteConnects atomic.Int64
	incompleteHeld     latencies // first byte of the frame to server close

	httpIdleConnects    atomic.Int64
	httpProbe           latencies
	httpProbeErrs       atomic.Int64 // failed: refused, reset, timed out (10 s), not 200
	httpProbeUnanswered atomic.Int64 // still waiting when the attack stopped

	busyJoined, busySent atomic.Int64

	started time.Time // when the attacks started
}

// latencies is a locked list of durations.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// summary returns n, p50, p99 and max, as strings for the report.
func (l *latencies) summary() map[string]any {
	l.mu.Lock()
	d := slices.Clone(l.d)
	l.mu.Unlock()
	if len(d) == 0 {
		return map[string]any{"n": 0}
	}
	slices.Sort(d)
	q := func(f float64) string {
		return d[min(len(d)-1, int(f*float64(len(d))))].Round(time.Microsecond).String()
	}
	return map[string]any{"n": len(d), "p50": q(0.5), "p99": q(0.99), "max": d[len(d)-1].Round(time.Microsecond).String()}
}

// pause waits d or until the attack stops, and reports whether it goes on.
func (h *hostile) pause(d time.Duration) bool {
	select {
	case <-h.stop:
		return false
	case <-h.ctx().Done():
		return false
	case <-time.After(d):
		return true
	}
}

// startScanners: each scanner joins random room codes as fast as the
// server answers, scanWindow joins in flight, reconnecting when dropped.
// A reply that reveals a room ("joined", or "room full") is a find; after
// a join the scanner reconnects (a connection is in one room at most).
func (h *hostile) startScanners(n int) {
	cfg := h.r.cfg
	for i := range n {
		h.wg.Go(func() {
			cid := fmt.Sprintf("%s-scan-%d-%d", cfg.RunID, cfg.ProcIndex, i)
			for !h.stopped() && h.ctx().Err() == nil {
				out := h.scanOnce(cid)
				h.outcome("scan", out)
				if !h.pause(10 * time.Millisecond) {
					return
				}
			}
		})
	}
}

// upgraded dials and upgrades an attack connection; on failure it returns
// nil and the outcome to record.
func (h *hostile) upgraded() (*rawConn, string) {
	cfg := h.r.cfg
	c, err := rawDial(h.ctx(), cfg.Addr, 0)
	if err != nil {
		return nil, "dial failed: " + errKind(err)
	}
	if err := c.handshake(cfg.Addr, h.r.d.Path("")); err != nil {
		c.nc.Close()
		return nil, "handshake failed: " + errKind(err)
	}
	return c, ""
}

func (h *hostile) scanOnce(cid string) string {
	cfg := h.r.cfg
	c, why := h.upgraded()
	if c == nil {
		return why
	}
	defer c.nc.Close()
	h.more.scanConnects.Add(1)
	code := make([]byte, cfg.ScanCodeLen)
	var batch []byte
	for !h.stopped() {
		batch = batch[:0]
		for range scanWindow {
			for j := range code {
				code[j] = scanAlphabet[rand.IntN(len(scanAlphabet))]
			}
			var mask [4]byte
			binary.LittleEndian.PutUint32(mask[:], rand.Uint32())
			batch = codec.AppendMaskedFrame(batch, true, codec.OpText, h.r.d.AppendJoin(nil, cid, string(code)), mask)
		}
		_ = c.nc.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.nc.Write(batch); err != nil {
			return "write: " + errKind(err)
		}
		h.more.scanJoins.Add(scanWindow)
		for range scanWindow {
			op, p, err := c.readFrame()
			if err != nil {
				return "read: " + errKind(err)
			}
			switch {
			case op == byte(codec.OpClose):
				cc := 1005
				if len(p) >= 2 {
					cc = int(p[0])<<8 | int(p[1])
				}
				return fmt.Sprintf("closed by server %d", cc)
			case op != byte(codec.OpText):
			case bytes.Contains(p, []byte(`"joined"`)):
				h.more.scanHits.Add(1)
				return "hit: joined (reconnecting)"
			case bytes.Contains(p, []byte("not found")):
				h.more.scanMisses.Add(1)
			case bytes.Contains(p, []byte("room full")):
				h.more.scanHits.Add(1) // the room exists: found
			default:
				h.more.scanOther.Add(1)
				if h.more.scanOther.Load() <= 3 { // a sample of what else came
					h.outcome("scan_reply", fmt.Sprintf("%.80s", p))
				}
			}
		}
	}
	return "open at end"
}

// startSilent: each silent socket connects and sends nothing, and
// reconnects when the server drops it.
func (h *hostile) startSilent(n int) {
	cfg := h.r.cfg
	for range n {
		h.wg.Go(func() {
			for !h.stopped() && h.ctx().Err() == nil {
				c, err := rawDial(h.ctx(), cfg.Addr, 0)
				if err != nil {
					h.outcome("silent", "dial failed: "+errKind(err))
					if !h.pause(100 * time.Millisecond) {
						return
					}
					continue
				}
				h.more.silentConnects.Add(1)
				if held, ok := h.waitClosed(c.nc); ok {
					h.more.silentHeld.add(held)
					h.outcome("silent", "dropped by server")
				} else {
					h.outcome("silent", "open at end")
				}
				c.nc.Close()
			}
		})
	}
}

// waitClosed blocks until the server closes nc (true, with how long
// since the call) or the attack stops (false).
func (h *hostile) waitClosed(nc net.Conn) (time.Duration, bool) {
	t0 := time.Now()
	_ = nc.SetReadDeadline(time.Time{}) // here, not in the reader: the stop below must win
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = io.Copy(io.Discard, nc)
	}()
	select {
	case <-done:
		return time.Since(t0), true
	case <-h.stop:
	case <-h.ctx().Done():
	}
	_ = nc.SetReadDeadline(time.Now()) // ends the copy
	<-done
	return 0, false
}

// startIncomplete: each client completes the handshake, announces a 64 KiB
// frame, sends IncompleteBytes of it at once and then one byte every
// IncompleteEvery; it reconnects when dropped.
func (h *hostile) startIncomplete(n int) {
	for range n {
		h.wg.Go(func() {
			for !h.stopped() && h.ctx().Err() == nil {
				out := h.incompleteOnce()
				h.outcome("incomplete", out)
				if !h.pause(100 * time.Millisecond) {
					return
				}
			}
		})
	}
}

func (h *hostile) incompleteOnce() string {
	cfg := h.r.cfg
	c, why := h.upgraded()
	if c == nil {
		return why
	}
	defer c.nc.Close()
	h.more.incompleteConnects.Add(1)
	mask := [4]byte{5, 6, 7, 8}
	frame := binary.BigEndian.AppendUint64([]byte{0x81, 0x80 | 127}, 64<<10)
	frame = append(frame, mask[:]...)
	for i := range cfg.IncompleteBytes {
		frame = append(frame, 'a'^mask[i%4])
	}
	t0 := time.Now()
	closed := make(chan struct{})
	go func() { // the server's close or drop
		defer close(closed)
		_, _ = io.Copy(io.Discard, c.nc)
	}()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(frame); err != nil {
		<-closed
		return "write: " + errKind(err)
	}
	sent := cfg.IncompleteBytes
	t := time.NewTicker(cfg.IncompleteEvery)
	defer t.Stop()
	for {
		select {
		case <-closed:
			h.more.incompleteHeld.add(time.Since(t0))
			return "dropped by server"
		case <-h.stop:
			_ = c.nc.SetReadDeadline(time.Now())
			<-closed
			return "open at end"
		case <-t.C:
		}
		if sent >= 64<<10 {
			continue // never complete the frame
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.nc.Write([]byte{'a' ^ mask[sent%4]}); err != nil {
			_ = c.nc.SetReadDeadline(time.Now())
			<-closed
			h.more.incompleteHeld.add(time.Since(t0))
			return "write: " + errKind(err)
		}
		sent++
	}
}

// startHTTPIdle opens n kept-alive connections to the HTTP listener, each
// after one GET /healthz, and reopens those the server closes.
func (h *hostile) startHTTPIdle(n int) {
	cfg := h.r.cfg
	for range n {
		h.wg.Go(func() {
			for !h.stopped() && h.ctx().Err() == nil {
				d := net.Dialer{Timeout: 5 * time.Second}
				nc, err := d.DialContext(h.ctx(), "tcp", cfg.HTTPAddr)
				if err != nil {
					h.outcome("http_idle", "dial failed: "+errKind(err))
					if !h.pause(100 * time.Millisecond) {
						return
					}
					continue
				}
				h.more.httpIdleConnects.Add(1)
				_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
				_, err = fmt.Fprintf(nc, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", cfg.HTTPAddr)
				if err == nil {
					var resp *http.Response
					if resp, err = http.ReadResponse(bufio.NewReader(nc), nil); err == nil {
						resp.Body.Close()
					}
				}
				if err != nil {
					h.outcome("http_idle", "request failed: "+errKind(err))
					nc.Close()
					if !h.pause(100 * time.Millisecond) {
						return
					}
					continue
				}
				if _, ok := h.waitClosed(nc); ok {
					h.outcome("http_idle", "closed by server")
				} else {
					h.outcome("http_idle", "open at end")
				}
				nc.Close()
			}
		})
	}
}

// startHTTPProbe GETs /healthz on a new connection every HTTPProbeEvery,
// open loop (a probe that hangs does not delay the next; at most
// maxProbes in flight), and records how long each answer took. A failed
// probe counts as an error and its time as a latency too, so a hang shows
// in the max; a probe still waiting when the attack stops is cancelled,
// counted apart, and its latency is the time it had waited (a lower bound).
func (h *hostile) startHTTPProbe() {
	const maxProbes = 200
	cfg := h.r.cfg
	ctx, cancel := context.WithCancel(h.ctx())
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	url := "http://" + cfg.HTTPAddr + "/healthz"
	sem := make(chan struct{}, maxProbes)
	var probes sync.WaitGroup
	h.wg.Go(func() {
		defer probes.Wait()
		defer cancel()
		t := time.NewTicker(cfg.HTTPProbeEvery)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			select {
			case sem <- struct{}{}:
			default:
				h.outcome("http_probe", "not sent: 200 probes in flight")
				continue
			}
			probes.Go(func() {
				defer func() { <-sem }()
				h.probeOnce(ctx, client, url)
			})
		}
	})
}

func (h *hostile) probeOnce(ctx context.Context, client *http.Client, url string) {
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	t0 := time.Now()
	resp, err := client.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
	}
	h.more.httpProbe.add(time.Since(t0))
	switch {
	case err == nil:
	case ctx.Err() != nil:
		h.more.httpProbeUnanswered.Add(1)
	default:
		h.more.httpProbeErrs.Add(1)
		h.outcome("http_probe", probeErr(err))
	}
}

func probeErr(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}

// startMore starts the attacks of this file that cfg enables.
func (h *hostile) startMore() {
	cfg := h.r.cfg
	h.more.started = time.Now()
	h.startScanners(cfg.Scanners)
	h.startSilent(cfg.Silent)
	h.startIncomplete(cfg.Incomplete)
	if cfg.BusyReaders > 0 {
		h.startBusyRoom(cfg.BusyReaders)
	}
	if cfg.HTTPAddr != "" {
		h.startHTTPIdle(cfg.HTTPIdle)
		h.startHTTPProbe()
	}
}

// moreReport adds the counters of this file to the hostile report; the
// attacks ran for the given time.
func (h *hostile) moreReport(out map[string]any, ran time.Duration) {
	cfg := h.r.cfg
	m := &h.more
	if cfg.Scanners > 0 {
		out["scan_joins"] = m.scanJoins.Load()
		out["scan_joins_per_s"] = int64(float64(m.scanJoins.Load()) / max(ran.Seconds(), 1e-3))
		out["scan_found"] = m.scanHits.Load()
		out["scan_not_found"] = m.scanMisses.Load()
		out["scan_other_replies"] = m.scanOther.Load()
		out["scan_connects"] = m.scanConnects.Load()
	}
	if cfg.Silent > 0 {
		out["silent_connects"] = m.silentConnects.Load()
		out["silent_held_until_drop"] = m.silentHeld.summary()
	}
	if cfg.Incomplete > 0 {
		out["incomplete_connects"] = m.incompleteConnects.Load()
		out["incomplete_held_until_drop"] = m.incompleteHeld.summary()
	}
	if cfg.BusyReaders > 0 {
		out["busy_readers_joined"] = m.busyJoined.Load()
		out["busy_sent"] = m.busySent.Load()
	}
	if cfg.HTTPAddr != "" {
		out["http_idle_connects"] = m.httpIdleConnects.Load()
		out["http_probe"] = m.httpProbe.summary()
		out["http_probe_errors"] = m.httpProbeErrs.Load()
		out["http_probe_unanswered_at_end"] = m.httpProbeUnanswered.Load()
	}
}

// startBusyRoom: one sender creates a room and sends BusyRate messages/s
// into it while n members of it never read (small SO_RCVBUF, as the slow
// readers): the server must cap what it queues for them (--outbound-cap)
// and close them, without touching anyone else.
func (h *hostile) startBusyRoom(n int) {
	cfg := h.r.cfg
	cid := fmt.Sprintf("%s-busy-%d", cfg.RunID, cfg.ProcIndex)
	c, err := rawDial(h.ctx(), cfg.Addr, 0)
	if err == nil {
		err = c.handshake(cfg.Addr, h.r.d.Path(""))
	}
	if err == nil {
		err = c.writeText(h.r.d.AppendCreate(nil, cid, "", n+1))
	}
	var room string
	if err == nil {
		_ = c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		for room == "" && err == nil {
			var p []byte
			if _, p, err = c.readFrame(); err == nil {
				if ev, ok := h.r.d.Parse(p); ok && ev.Kind == dialect.Created {
					room = string(ev.Room)
				}
			}
		}
		_ = c.nc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		h.outcome("busy_sender", "setup failed: "+errKind(err))
		if c != nil {
			c.nc.Close()
		}
		return
	}
	var ready sync.WaitGroup
	for i := range n {
		ready.Add(1)
		h.wg.Go(func() { h.busyReader(fmt.Sprintf("%s-r%d", cid, i), room, &ready) })
	}
	ready.Wait()
	h.wg.Go(func() {
		defer c.nc.Close()
		go func() { _, _ = io.Copy(io.Discard, c.nc) }() // peer events; ends with the connection
		perBatch := max(1, int(cfg.BusyRate/100))
		msg, _ := dialect.AppendSized(h.r.d, nil, nil, "", "", dialect.Stamp{I: -1}, cfg.SizeMax)
		var batch []byte
		for range perBatch {
			batch = codec.AppendMaskedFrame(batch, true, codec.OpText, msg, [4]byte{3, 1, 4, 1})
		}
		t := time.NewTicker(10 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-h.stop:
				h.outcome("busy_sender", "open at end")
				return
			case <-t.C:
			}
			_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
			if _, err := c.nc.Write(batch); err != nil {
				h.outcome("busy_sender", "write: "+errKind(err))
				return
			}
			h.more.busySent.Add(int64(perBatch))
		}
	})
}

// busyReader joins room, reads until joined and never again; at the end
// it reads what is left to learn how the server ended it.
func (h *hostile) busyReader(cid, room string, ready *sync.WaitGroup) {
	cfg := h.r.cfg
	c, err := rawDial(h.ctx(), cfg.Addr, cfg.SlowRcvBuf)
	if err == nil {
		err = c.handshake(cfg.Addr, h.r.d.Path(room))
	}
	if err == nil {
		err = c.writeText(h.r.d.AppendJoin(nil, cid, room))
	}
	if err == nil {
		_, err = c.readUntil([]byte(`"joined"`), time.Now().Add(10*time.Second))
	}
	ready.Done()
	if err != nil {
		h.outcome("busy_reader", "setup failed: "+errKind(err))
		if c != nil {
			c.nc.Close()
		}
		return
	}
	defer c.nc.Close()
	h.more.busyJoined.Add(1)
	<-h.stop
	out, _ := c.drainOutcome(time.Now().Add(3 * time.Second))
	if out == "eof" {
		out = "closed by the server (FIN, no close frame)"
	}
	h.outcome("busy_reader", "at end: "+out)
}
