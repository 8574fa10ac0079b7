package httpapi

import (
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"partyline/dialect"
)

// GET /api/stats (docs/api.md): this node's live counts for dashboards and
// the admin page, read from the same collectors as /metrics, plus message
// rates the server works out between two of its own samples.

// minRateWindow is the shortest interval a rate is taken over: samples
// closer than that to the previous one reuse the last rate, so several
// pollers (admin tabs) do not shrink the window to a few milliseconds.
const minRateWindow = time.Second

// Stats is the body of GET /api/stats.
type Stats struct {
	Node        string           `json:"node,omitempty"` // the node label of the metrics
	Time        time.Time        `json:"time"`
	Connections int64            `json:"connections"` // open WebSocket connections, handshaking included
	Rooms       map[string]int64 `json:"rooms"`       // by dialect: rooms (channels, groups) that have members
	MessagesIn  uint64           `json:"messagesIn"`  // data messages received since the start
	MessagesOut uint64           `json:"messagesOut"` // frames delivered since the start (one per recipient)
	// The rates over the last RateWindow seconds: the time since the
	// previous sample at least a second older (the first sample is taken
	// when the listener starts).
	MessagesInPerSecond  float64 `json:"messagesInPerSecond"`
	MessagesOutPerSecond float64 `json:"messagesOutPerSecond"`
	RateWindow           float64 `json:"rateWindowSeconds"`
}

type statsSource struct {
	g        prometheus.Gatherer
	dialects []dialect.Dialect
	now      func() time.Time // time.Now; tests step it

	mu              sync.Mutex
	started         bool      // the base sample is taken
	at              time.Time // the base sample of the rates
	in, out         uint64
	rateIn, rateOut float64 // the last rates, over window seconds
	window          float64
}

func newStatsSource(g prometheus.Gatherer, ds []dialect.Dialect) *statsSource {
	return newStatsSourceFrom(&statsSource{g: g, dialects: ds, now: time.Now})
}

// newStatsSourceFrom takes the first sample, the base of the first rate.
func newStatsSourceFrom(s *statsSource) *statsSource {
	now := s.now()
	if st, err := s.read(now); err == nil {
		s.at, s.in, s.out, s.started = now, st.MessagesIn, st.MessagesOut, true
	}
	return s
}

// read gathers the counts at now (no rates).
func (s *statsSource) read(now time.Time) (Stats, error) {
	st := Stats{Time: now.UTC(), Rooms: map[string]int64{}}
	for _, d := range s.dialects {
		if r, ok := d.(dialect.Stats); ok {
			st.Rooms[d.Name()] = r.Rooms()
		}
	}
	fams, err := s.g.Gather()
	if err != nil && len(fams) == 0 {
		return st, err
	}
	for _, f := range fams {
		ms := f.GetMetric()
		if len(ms) == 0 {
			continue
		}
		switch f.GetName() {
		case "partyline_connections":
			st.Connections = int64(ms[0].GetGauge().GetValue())
		case "partyline_messages_in_total":
			st.MessagesIn = uint64(ms[0].GetCounter().GetValue())
		case "partyline_messages_out_total":
			st.MessagesOut = uint64(ms[0].GetCounter().GetValue())
		default:
			continue
		}
		for _, l := range ms[0].GetLabel() {
			if l.GetName() == "node" {
				st.Node = l.GetValue()
			}
		}
	}
	return st, nil
}

// sample reads the counts and the rates since the base sample, moving the
// base forward when it is at least minRateWindow old.
func (s *statsSource) sample() (Stats, error) {
	now := s.now() // with its monotonic reading
	st, err := s.read(now)
	if err != nil {
		return st, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.started {
		s.at, s.in, s.out, s.started = now, st.MessagesIn, st.MessagesOut, true
	} else if dt := now.Sub(s.at); dt >= minRateWindow {
		sec := dt.Seconds()
		s.rateIn = float64(st.MessagesIn-min(s.in, st.MessagesIn)) / sec
		s.rateOut = float64(st.MessagesOut-min(s.out, st.MessagesOut)) / sec
		s.window = sec
		s.at, s.in, s.out = now, st.MessagesIn, st.MessagesOut
	}
	st.MessagesInPerSecond, st.MessagesOutPerSecond, st.RateWindow = s.rateIn, s.rateOut, s.window
	return st, nil
}

func (s *statsSource) serve(w http.ResponseWriter, _ *http.Request) {
	st, err := s.sample()
	if err != nil {
		dialect.HTTPError(w, http.StatusInternalServerError, "cannot read the metrics: "+err.Error())
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	reply(w, http.StatusOK, st)
}
