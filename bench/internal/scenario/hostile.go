package scenario

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"partyline/bench/internal/dialect"
	"partyline/bench/internal/stats"
	"partyline/codec"
)

// runHostile runs the rooms workload while hostile clients misbehave:
// SlowFrac of the room members stop reading (they stay in their rooms, so
// the server must buffer or drop them), Dribblers send their handshake one
// byte at a time, Oversize clients send frames over the size limit in a
// loop and Flooders send as fast as FloodRate allows (10% invalid JSON) in
// rooms of their own; Scanners join random room codes, Silent sockets
// never start a handshake, Incomplete clients leave a 64 KiB frame
// unfinished, and with HTTPAddr HTTPIdle connections sit idle on the HTTP
// listener while a prober times /healthz (hostile_more.go). The report's latency and counts are those of the
// well-behaved members only; Extra holds what happened to each kind of
// hostile client.
func runHostile(ctx context.Context, cfg *Config) (*stats.Report, error) {
	r, rooms, err := sendingRooms(ctx, cfg)
	if err != nil {
		return nil, err
	}
	// Every k-th room gives its last seat to a slow reader.
	nSlow := int(math.Round(cfg.SlowFrac * float64(len(rooms)*cfg.RoomSize)))
	var slowRooms []*room
	if nSlow > 0 && cfg.RoomSize > 1 {
		k := max(1, len(rooms)/nSlow)
		for i := 0; i < len(rooms) && len(slowRooms) < nSlow; i += k {
			rm := rooms[i]
			rm.members = rm.members[:len(rm.members)-1]
			slowRooms = append(slowRooms, rm)
		}
	}
	// With FloodInRooms, rooms spread over the rest give a seat to a flooder.
	var floodRooms []*room
	if cfg.FloodInRooms && cfg.Flooders > 0 && cfg.RoomSize > 1 {
		k := max(1, len(rooms)/cfg.Flooders)
		for i := k / 2; i < len(rooms) && len(floodRooms) < cfg.Flooders; i += k {
			rm := rooms[i]
			if len(rm.members) < cfg.RoomSize { // a slow reader has its seat
				continue
			}
			rm.members = rm.members[:len(rm.members)-1]
			floodRooms = append(floodRooms, rm)
		}
	}
	rooms, err = r.setupRooms(rooms)
	if err != nil {
		return r.finish(), err
	}
	h := &hostile{r: r, stop: make(chan struct{}), outcomes: map[string]map[string]int64{}}
	h.startSlow(slowRooms)
	r.settle()
	r.waitStart()
	r.loaded(len(rooms) * cfg.RoomSize)
	h.startDribblers(cfg.Dribblers)
	h.startOversize(cfg.Oversize)
	h.startFlooders(cfg.Flooders, floodRooms)
	h.startMore()
	cfg.logf("hostile: %d slow readers, %d dribblers, %d oversize, %d flooders, %d scanners, %d silent, %d incomplete, %d idle HTTP (http %q); measuring %v at %.3g msg/s",
		len(slowRooms), cfg.Dribblers, cfg.Oversize, cfg.Flooders, cfg.Scanners, cfg.Silent, cfg.Incomplete, cfg.HTTPIdle, cfg.HTTPAddr, cfg.Duration, cfg.Rate)
	w := r.measure(cfg.Rate, cfg.Duration)
	r.applyWindow(w)
	close(h.stop)
	ran := time.Since(h.more.started)
	h.wg.Wait()
	r.rep.Extra = h.report()
	h.moreReport(r.rep.Extra, ran)
	cfg.logf("window done: %s", oneLine(r.rep))
	return r.finish(), nil
}

type hostile struct {
	r    *runner
	stop chan struct{}
	wg   sync.WaitGroup

	slowJoined, slowReset, slowBytes atomic.Int64
	dribbleDone                      atomic.Int64
	oversizeTries                    atomic.Int64
	floodSent, floodErrs, floodBad   atomic.Int64

	mu       sync.Mutex // guards the following
	outcomes map[string]map[string]int64
	closeLat []time.Duration // oversize: header sent to close seen

	more moreHostile // hostile_more.go
}

func (h *hostile) outcome(kind, what string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.outcomes[kind]
	if m == nil {
		m = map[string]int64{}
		h.outcomes[kind] = m
	}
	m[what]++
}

func (h *hostile) stopped() bool {
	select {
	case <-h.stop:
		return true
	default:
		return false
	}
}

func (h *hostile) ctx() context.Context { return h.r.ctx }

// startSlow joins one slow reader to each room; it reads until joined,
// then never again. Its TCP state is polled so that a server close (RST)
// is seen without reading; at the end whatever is left is read.
func (h *hostile) startSlow(rooms []*room) {
	cfg := h.r.cfg
	var ready sync.WaitGroup
	for i, rm := range rooms {
		h.wg.Add(1)
		ready.Add(1)
		go func() {
			defer h.wg.Done()
			cid := fmt.Sprintf("%s-slow-%d-%d", cfg.RunID, cfg.ProcIndex, i)
			c, err := rawDial(h.ctx(), cfg.Addr, cfg.SlowRcvBuf)
			if err == nil {
				err = c.handshake(cfg.Addr, h.r.d.Path(rm.name()))
			}
			if err == nil {
				err = c.writeText(h.r.d.AppendJoin(nil, cid, rm.name()))
			}
			if err == nil {
				_, err = c.readUntil([]byte(`"joined"`), time.Now().Add(10*time.Second))
			}
			ready.Done()
			if err != nil {
				h.outcome("slow", "setup failed: "+errKind(err))
				if c != nil {
					c.nc.Close()
				}
				return
			}
			defer c.nc.Close()
			h.slowJoined.Add(1)
			t := time.NewTicker(250 * time.Millisecond)
			defer t.Stop()
			for closed := false; ; {
				select {
				case <-h.stop:
					out, n := c.drainOutcome(time.Now().Add(2 * time.Second))
					switch out {
					case "eof":
						out = "closed by the server (FIN, no close frame)"
					case "open":
						out = "still open"
					}
					h.outcome("slow", "at end: "+out)
					h.slowBytes.Add(n)
					return
				case <-t.C:
					// A reset shows at once; a FIN waits behind the
					// unread data, so a graceful close is only seen at
					// the end.
					if !closed && c.tcpState() != 1 {
						closed = true
						h.slowReset.Add(1)
					}
				}
			}
		}()
	}
	ready.Wait()
}

// startDribblers sends each handshake one byte per DribbleEvery.
func (h *hostile) startDribblers(n int) {
	cfg := h.r.cfg
	for range n {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			c, err := rawDial(h.ctx(), cfg.Addr, 0)
			if err != nil {
				h.outcome("dribble", "dial failed")
				return
			}
			defer c.nc.Close()
			req, accept := handshakeRequest(cfg.Addr, h.r.d.Path(""))
			t0 := time.Now()
			for i := range req {
				if _, err := c.nc.Write(req[i : i+1]); err != nil {
					h.outcome("dribble", fmt.Sprintf("closed by server after %d bytes", i))
					return
				}
				select {
				case <-h.stop:
					h.outcome("dribble", fmt.Sprintf("still dribbling at end (%d of %d bytes)", i+1, len(req)))
					return
				case <-time.After(cfg.DribbleEvery):
				}
			}
			_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
			if err := c.readResponse(accept); err != nil {
				h.outcome("dribble", "response: "+errKind(err))
				return
			}
			h.dribbleDone.Add(1)
			h.outcome("dribble", fmt.Sprintf("completed (%.0fs)", time.Since(t0).Seconds()))
		}()
	}
}

// startOversize repeatedly connects and sends a frame that declares
// OversizeLen bytes, expecting a close (1009).
func (h *hostile) startOversize(n int) {
	cfg := h.r.cfg
	for range n {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			for !h.stopped() && h.ctx().Err() == nil {
				h.oversizeOnce(cfg)
				select {
				case <-h.stop:
				case <-time.After(500 * time.Millisecond):
				}
			}
		}()
	}
}

func (h *hostile) oversizeOnce(cfg *Config) {
	h.oversizeTries.Add(1)
	c, err := rawDial(h.ctx(), cfg.Addr, 0)
	if err != nil {
		h.outcome("oversize", "dial failed")
		return
	}
	defer c.nc.Close()
	if err := c.handshake(cfg.Addr, h.r.d.Path("")); err != nil {
		h.outcome("oversize", "handshake failed")
		return
	}
	res := make(chan string, 1)
	t0 := time.Now()
	go func() {
		code, err := c.readUntil([]byte{0}, time.Now().Add(10*time.Second))
		switch {
		case code != 0:
			res <- fmt.Sprintf("close %d", code)
		case err != nil:
			res <- "no close frame: " + shortErr(err)
		}
	}()
	// Declare the whole length, then stream the payload until the server
	// stops taking it.
	mask := [4]byte{1, 2, 3, 4}
	hdr := binary.BigEndian.AppendUint64([]byte{0x81, 0x80 | 127}, uint64(cfg.OversizeLen))
	hdr = append(hdr, mask[:]...)
	chunk := make([]byte, 16<<10) // 'a' masked; 16 KiB is a multiple of 4
	for i := range chunk {
		chunk[i] = 'a' ^ mask[i%4]
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(hdr); err == nil {
		for sent := 0; sent < cfg.OversizeLen; sent += len(chunk) {
			if _, err := c.nc.Write(chunk); err != nil {
				break
			}
		}
	}
	out := <-res
	if out == "close 1009" {
		h.mu.Lock()
		h.closeLat = append(h.closeLat, time.Since(t0))
		h.mu.Unlock()
	}
	h.outcome("oversize", out)
}

func shortErr(err error) string { return errKind(err) }

// startFlooders: each flooder creates a room of its own, or with rooms
// joins rooms[i] (its members then get the flood), and sends FloodRate
// messages/s (every tenth invalid JSON) in 10 ms batches.
func (h *hostile) startFlooders(n int, rooms []*room) {
	cfg := h.r.cfg
	for i := range n {
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			cid := fmt.Sprintf("%s-flood-%d-%d", cfg.RunID, cfg.ProcIndex, i)
			c, err := rawDial(h.ctx(), cfg.Addr, 0)
			if err == nil {
				err = c.handshake(cfg.Addr, h.r.d.Path(""))
			}
			switch {
			case err != nil:
			case rooms != nil && i < len(rooms):
				if err = c.writeText(h.r.d.AppendJoin(nil, cid, rooms[i].name())); err == nil {
					_, err = c.readUntil([]byte(`"joined"`), time.Now().Add(10*time.Second))
				}
			case rooms != nil:
				h.outcome("flood", "no room left to flood")
				c.nc.Close()
				return
			default:
				if err = c.writeText(h.r.d.AppendCreate(nil, cid, "", 1)); err == nil {
					_, err = c.readUntil([]byte(`"created"`), time.Now().Add(10*time.Second))
				}
			}
			if err != nil {
				h.outcome("flood", "setup failed: "+shortErr(err))
				if c != nil {
					c.nc.Close()
				}
				return
			}
			defer c.nc.Close()
			h.flood(c, cfg)
		}()
	}
}

func (h *hostile) flood(c *rawConn, cfg *Config) {
	perBatch := max(1, int(cfg.FloodRate/100))
	var batch []byte
	mask := [4]byte{9, 8, 7, 6}
	for j := range perBatch {
		var msg []byte
		if j%10 == 9 {
			msg = []byte(`{"type":"send","data":`) // invalid JSON: an error reply
		} else {
			msg, _ = dialect.AppendSized(h.r.d, nil, nil, "", "", dialect.Stamp{I: -1}, cfg.SizeMin)
		}
		batch = codec.AppendMaskedFrame(batch, true, codec.OpText, msg, mask)
	}
	done := make(chan string, 1)
	go func() { // count replies until the connection ends
		for {
			op, p, err := c.readFrame()
			if err != nil {
				done <- "ended: " + shortErr(err)
				return
			}
			if op == byte(codec.OpClose) {
				code := 1005
				if len(p) >= 2 {
					code = int(p[0])<<8 | int(p[1])
				}
				done <- fmt.Sprintf("closed by server %d", code)
				return
			}
			if ev, ok := h.r.d.Parse(p); ok && ev.Kind == dialect.Error {
				h.floodErrs.Add(1)
			}
		}
	}()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			h.outcome("flood", "open at end")
			return
		case out := <-done:
			h.outcome("flood", out)
			return
		case <-t.C:
		}
		_ = c.nc.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := c.nc.Write(batch); err != nil {
			h.floodBad.Add(1)
			continue
		}
		h.floodSent.Add(int64(perBatch))
	}
}

func (h *hostile) report() map[string]any {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]any{
		"slow_joined":              h.slowJoined.Load(),
		"slow_reset_while_stalled": h.slowReset.Load(),
		"slow_bytes_read_at_end":   h.slowBytes.Load(),
		"dribble_completed":        h.dribbleDone.Load(),
		"oversize_attempts":        h.oversizeTries.Load(),
		"flood_sent":               h.floodSent.Load(),
		"flood_error_replies":      h.floodErrs.Load(),
		"flood_write_timeouts":     h.floodBad.Load(),
		"outcomes":                 h.outcomes,
		"oversize_close_1009_p50":  "",
	}
	if n := len(h.closeLat); n > 0 {
		lat := slices.Clone(h.closeLat)
		slices.Sort(lat)
		out["oversize_close_1009_p50"] = lat[n/2].String()
		out["oversize_close_1009_max"] = lat[n-1].String()
	}
	if s := h.r.rep.Server; s != nil {
		out["server_rss_peak_kib"] = h.r.smp.Peak()
	}
	return out
}
