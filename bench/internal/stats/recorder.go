// Package stats records what the load generator measures: counters,
// latency histograms (HdrHistogram) and per-message completion, and turns
// them into the JSON record and the table a run prints.
//
// A Recorder belongs to one event loop: histograms and maps are touched on
// that loop only, counters are atomic so a progress printer may read them
// from anywhere. Recorders of all loops (and of several generator
// processes) are merged into one Report.
package stats

import (
	"sync/atomic"

	hdr "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: 1 ns to 100 s at 3 significant digits.
const (
	histMin = 1
	histMax = 100e9
	histSig = 3
)

// NewHist returns an empty latency histogram in nanoseconds.
func NewHist() *hdr.Histogram { return hdr.New(histMin, histMax, histSig) }

// Record adds v (ns) to h, clamping to the histogram's range.
func Record(h *hdr.Histogram, v int64) {
	if v < histMin {
		v = histMin
	} else if v > histMax {
		v = histMax
	}
	_ = h.RecordValue(v)
}

// Counters are the run's event counts. Fields are atomic.
type Counters struct {
	DialErrors      atomic.Int64 // TCP connect failed
	Opened          atomic.Int64 // handshakes completed
	HandshakeErrors atomic.Int64 // non-101 or bad 101
	Created         atomic.Int64 // rooms created
	Joined          atomic.Int64 // joins acknowledged
	Sent            atomic.Int64 // messages sent
	Expected        atomic.Int64 // deliveries expected for the messages sent
	Delivered       atomic.Int64 // deliveries received
	Reordered       atomic.Int64 // deliveries out of per-sender order (gap or repeat)
	Unparsed        atomic.Int64 // server messages the dialect could not parse
	ErrorReplies    atomic.Int64 // error replies from the server
	PeerJoined      atomic.Int64
	PeerLeft        atomic.Int64
	Closed          atomic.Int64 // connections that closed unexpectedly after opening
	ServerCloses    atomic.Int64 // close frames received from the server
	Cycles          atomic.Int64 // churn cycles completed
	Acked           atomic.Int64 // chat: sends acknowledged by the server
}

// Counts is a plain snapshot of Counters (the JSON form).
type Counts struct {
	DialErrors      int64 `json:"dial_errors"`
	Opened          int64 `json:"opened"`
	HandshakeErrors int64 `json:"handshake_errors"`
	Created         int64 `json:"created"`
	Joined          int64 `json:"joined"`
	Sent            int64 `json:"sent"`
	Expected        int64 `json:"expected"`
	Delivered       int64 `json:"delivered"`
	Lost            int64 `json:"lost"` // Expected - Delivered when positive, after the drain
	Extra           int64 `json:"extra"`
	Reordered       int64 `json:"reordered"`
	Unparsed        int64 `json:"unparsed"`
	ErrorReplies    int64 `json:"error_replies"`
	PeerJoined      int64 `json:"peer_joined"`
	PeerLeft        int64 `json:"peer_left"`
	Closed          int64 `json:"closed"`
	ServerCloses    int64 `json:"server_closes"`
	Cycles          int64 `json:"cycles"`
	Acked           int64 `json:"acked,omitempty"`
}

// Snapshot copies the counters.
func (c *Counters) Snapshot() Counts {
	return Counts{
		DialErrors: c.DialErrors.Load(), Opened: c.Opened.Load(),
		HandshakeErrors: c.HandshakeErrors.Load(), Created: c.Created.Load(),
		Joined: c.Joined.Load(), Sent: c.Sent.Load(), Expected: c.Expected.Load(),
		Delivered: c.Delivered.Load(), Reordered: c.Reordered.Load(),
		Unparsed: c.Unparsed.Load(), ErrorReplies: c.ErrorReplies.Load(),
		PeerJoined: c.PeerJoined.Load(), PeerLeft: c.PeerLeft.Load(),
		Closed: c.Closed.Load(), ServerCloses: c.ServerCloses.Load(),
		Cycles: c.Cycles.Load(), Acked: c.Acked.Load(),
	}
}

// Add returns a + b.
func (a Counts) Add(b Counts) Counts {
	a.DialErrors += b.DialErrors
	a.Opened += b.Opened
	a.HandshakeErrors += b.HandshakeErrors
	a.Created += b.Created
	a.Joined += b.Joined
	a.Sent += b.Sent
	a.Expected += b.Expected
	a.Delivered += b.Delivered
	a.Reordered += b.Reordered
	a.Unparsed += b.Unparsed
	a.ErrorReplies += b.ErrorReplies
	a.PeerJoined += b.PeerJoined
	a.PeerLeft += b.PeerLeft
	a.Closed += b.Closed
	a.ServerCloses += b.ServerCloses
	a.Cycles += b.Cycles
	a.Acked += b.Acked
	return a.settle()
}

// Sub returns a - b (counts accumulated between two snapshots).
func (a Counts) Sub(b Counts) Counts {
	a.DialErrors -= b.DialErrors
	a.Opened -= b.Opened
	a.HandshakeErrors -= b.HandshakeErrors
	a.Created -= b.Created
	a.Joined -= b.Joined
	a.Sent -= b.Sent
	a.Expected -= b.Expected
	a.Delivered -= b.Delivered
	a.Reordered -= b.Reordered
	a.Unparsed -= b.Unparsed
	a.ErrorReplies -= b.ErrorReplies
	a.PeerJoined -= b.PeerJoined
	a.PeerLeft -= b.PeerLeft
	a.Closed -= b.Closed
	a.ServerCloses -= b.ServerCloses
	a.Cycles -= b.Cycles
	a.Acked -= b.Acked
	return a.settle()
}

// settle recomputes Lost and Extra from Expected and Delivered.
func (a Counts) settle() Counts {
	a.Lost, a.Extra = 0, 0
	if d := a.Expected - a.Delivered; d > 0 {
		a.Lost = d
	} else {
		a.Extra = -d
	}
	return a
}

// Settled returns a with Lost and Extra computed.
func (a Counts) Settled() Counts { return a.settle() }

// MsgAgg is the delivery of one message to all its receivers.
type MsgAgg struct {
	Sent int64 // send time, Unix ns
	Want int64 // receivers expected (set by the sender's loop only)
	N    int64 // receivers that got it
	Last int64 // latest receive time, Unix ns
}

// Recorder is one event loop's measurements.
type Recorder struct {
	C Counters

	// Event loop only:
	Lat       *hdr.Histogram     // delivery latency
	Lag       *hdr.Histogram     // send lag: actual - scheduled send time
	Handshake *hdr.Histogram     // dial start to 101
	Connect   *hdr.Histogram     // dial start to TCP connected (part of Handshake)
	Setup     *hdr.Histogram     // create/join request to reply (churn: dial to joined)
	Ack       *hdr.Histogram     // chat: send to the server's acknowledgement
	Join      *hdr.Histogram     // churn: join written (right after the 101) to joined
	Msgs      map[uint64]*MsgAgg // per-message completion, nil unless tracking
	Closes    map[string]int64   // why connections closed
	// Series, when not nil, receives every SeriesEvery-th delivery as
	// (receive time, latency) pairs, for latency-over-time plots.
	Series      *[][2]int64
	SeriesEvery int64
	seriesN     int64
}

// NewRecorder returns an empty recorder; track enables per-message
// completion tracking.
func NewRecorder(track bool) *Recorder {
	r := &Recorder{Lat: NewHist(), Lag: NewHist(), Handshake: NewHist(), Connect: NewHist(), Setup: NewHist(), Ack: NewHist(),
		Join: NewHist(), Closes: map[string]int64{}}
	if track {
		r.Msgs = map[uint64]*MsgAgg{}
	}
	return r
}

// MsgKey identifies a message by sender and sequence number.
func MsgKey(sender, seq int64) uint64 { return uint64(sender)<<32 | uint64(uint32(seq)) }

// Deliver records one delivery of the message (sender, seq) sent at sent
// and received at now. Event loop only.
func (r *Recorder) Deliver(sender, seq, sent, now int64) {
	r.C.Delivered.Add(1)
	Record(r.Lat, now-sent)
	if r.Series != nil {
		if r.seriesN++; r.seriesN%r.SeriesEvery == 0 {
			*r.Series = append(*r.Series, [2]int64{now, now - sent})
		}
	}
	if r.Msgs != nil {
		k := MsgKey(sender, seq)
		m := r.Msgs[k]
		if m == nil {
			m = &MsgAgg{Sent: sent}
			r.Msgs[k] = m
		}
		m.N++
		m.Last = max(m.Last, now)
	}
}

// ResetWindow clears the histograms and message map (not the counters)
// at the start of a measurement window. Event loop only.
func (r *Recorder) ResetWindow() {
	r.Lat.Reset()
	r.Lag.Reset()
	r.Ack.Reset()
	if r.Series != nil {
		*r.Series = (*r.Series)[:0]
	}
	if r.Msgs != nil {
		r.Msgs = map[uint64]*MsgAgg{}
	}
}
