package stats

import (
	"fmt"
	"sort"

	hdr "github.com/HdrHistogram/hdrhistogram-go"

	"partyline/bench/internal/procstat"
)

// Quant summarizes a latency histogram, in microseconds.
type Quant struct {
	N    int64   `json:"n"`
	Mean float64 `json:"mean_us"`
	P50  float64 `json:"p50_us"`
	P90  float64 `json:"p90_us"`
	P99  float64 `json:"p99_us"`
	P999 float64 `json:"p999_us"`
	Max  float64 `json:"max_us"`
}

// Quantiles summarizes h (values in ns).
func Quantiles(h *hdr.Histogram) Quant {
	if h == nil || h.TotalCount() == 0 {
		return Quant{}
	}
	us := func(v int64) float64 { return float64(v) / 1e3 }
	return Quant{
		N:    h.TotalCount(),
		Mean: h.Mean() / 1e3,
		P50:  us(h.ValueAtQuantile(50)),
		P90:  us(h.ValueAtQuantile(90)),
		P99:  us(h.ValueAtQuantile(99)),
		P999: us(h.ValueAtQuantile(99.9)),
		Max:  us(h.Max()),
	}
}

// Encode returns h in the HdrHistogram V2 compressed base64 form, so that
// records of several processes can be merged exactly.
func Encode(h *hdr.Histogram) string {
	if h == nil || h.TotalCount() == 0 {
		return ""
	}
	b, err := h.Encode(hdr.V2CompressedEncodingCookieBase)
	if err != nil {
		return ""
	}
	return string(b)
}

// Decode is the inverse of Encode; an empty string is an empty histogram.
func Decode(s string) (*hdr.Histogram, error) {
	if s == "" {
		return NewHist(), nil
	}
	return hdr.Decode([]byte(s))
}

// ServerReport is what was sampled from the server process.
type ServerReport struct {
	PID     int               `json:"pid"`
	Cmd     string            `json:"cmd,omitempty"`
	Samples []procstat.Sample `json:"samples,omitempty"`

	// Over the measurement window (sending, plus the drain):
	WindowSec   float64 `json:"window_s"`
	CPUSec      float64 `json:"cpu_s"`
	SysShare    float64 `json:"sys_share"`               // share of CPUSec spent in the kernel
	CPUUtil     float64 `json:"cpu_util"`                // cores busy, 1.0 = one core
	CPUPerDeliv float64 `json:"cpu_us_per_delivery"`     // CPU µs / delivery
	CPUPerSend  float64 `json:"cpu_us_per_send"`         // CPU µs / message sent
	IdleCPUUtil float64 `json:"idle_cpu_util,omitempty"` // idle scenario: during the hold

	RSSBaseKiB   int64   `json:"rss_base_kib"`   // before the first connection
	RSSLoadedKiB int64   `json:"rss_loaded_kib"` // after every connection was set up
	RSSPeakKiB   int64   `json:"rss_peak_kib"`
	RSSEndKiB    int64   `json:"rss_end_kib"` // at the end of the measurement
	RSSPerConn   float64 `json:"rss_per_conn_bytes,omitempty"`
	FDs          int     `json:"fds_loaded"`
	Threads      int     `json:"threads_loaded"`
}

// GenReport is the generator's own cost.
type GenReport struct {
	Loops      int     `json:"loops"`
	CPUs       int     `json:"cpus"` // CPUs the generator may run on (affinity)
	GOMAXPROCS int     `json:"gomaxprocs"`
	CPUSec     float64 `json:"cpu_s"`    // over the measurement window
	CPUUtil    float64 `json:"cpu_util"` // cores busy during the window
	RSSPeakKiB int64   `json:"rss_peak_kib"`
	// OtherCPU is the CPU (in cores) that processes other than the server
	// and this generator used during the window: a busy machine makes the
	// latencies meaningless.
	OtherCPU float64 `json:"other_cpu_cores"`
	Steal    float64 `json:"steal_cores"`    // hypervisor steal during the window
	Softirqd float64 `json:"softirqd_cores"` // ksoftirqd threads during the window
}

// Step is one rate step of a --find-max search.
type Step struct {
	Rate        float64 `json:"rate"` // messages per second per sender
	Good        bool    `json:"good"`
	Why         string  `json:"why,omitempty"`
	WindowSec   float64 `json:"window_s"`
	Counts      Counts  `json:"counts"`
	Latency     Quant   `json:"latency"`
	SendLag     Quant   `json:"send_lag"`
	DelivPerSec float64 `json:"deliveries_per_s"`
	ServerCPU   float64 `json:"server_cpu_s"`
	ServerUtil  float64 `json:"server_cpu_util"`
	CPUPerDeliv float64 `json:"server_cpu_us_per_delivery"`
	GenUtil     float64 `json:"gen_cpu_util"`
	OtherCPU    float64 `json:"other_cpu_cores"`
	LatHist     string  `json:"lat_hist,omitempty"`
	LagHist     string  `json:"lag_hist,omitempty"`
}

// Report is the JSON record of one run (or of several merged processes).
type Report struct {
	Scenario  string         `json:"scenario"`
	Label     string         `json:"label,omitempty"` // which server, e.g. "partyline"
	Dialect   string         `json:"dialect"`
	Date      string         `json:"date"`
	Args      []string       `json:"args"`
	Params    map[string]any `json:"params"`
	Host      map[string]any `json:"host"`
	Procs     int            `json:"procs"`
	ProcIndex int            `json:"proc_index"`

	Conns     int     `json:"conns"` // connections this record drove
	RampSec   float64 `json:"ramp_s"`
	WindowSec float64 `json:"window_s"` // measurement window (sending)

	Counts     Counts  `json:"counts"`       // over the measurement window (after drain)
	Total      Counts  `json:"total_counts"` // over the whole run
	Latency    Quant   `json:"latency"`      // delivery latency in the window
	SendLag    Quant   `json:"send_lag"`     // how late the generator sent
	Handshake  Quant   `json:"handshake"`    // dial to 101
	Connect    Quant   `json:"tcp_connect"`  // dial to TCP connected (part of handshake)
	SetupLat   Quant   `json:"setup"`        // create/join round trip (churn: dial to joined)
	Completion *Quant  `json:"completion,omitempty"`
	Rates      Rates   `json:"rates"`
	Steps      []Step  `json:"steps,omitempty"`
	MaxGood    float64 `json:"max_good_rate,omitempty"` // find-max: last good rate per sender

	Server *ServerReport    `json:"server,omitempty"`
	Gen    GenReport        `json:"generator"`
	Closes map[string]int64 `json:"closes,omitempty"`
	// KernelTCP: changes of the kernel TCP counters over the whole run (the
	// network namespace is shared: other processes count too).
	KernelTCP map[string]int64  `json:"kernel_tcp,omitempty"`
	Extra     map[string]any    `json:"extra,omitempty"` // scenario-specific figures
	Notes     []string          `json:"notes,omitempty"`
	Hists     map[string]string `json:"hists,omitempty"` // encoded histograms, for merging
}

// Rates are per-second figures over the window (ramp for handshakes).
type Rates struct {
	Sends      float64 `json:"sends_per_s"`
	Deliveries float64 `json:"deliveries_per_s"`
	Handshakes float64 `json:"handshakes_per_s,omitempty"`
	Cycles     float64 `json:"cycles_per_s,omitempty"`
}

// Note appends a warning to the report.
func (r *Report) Note(format string, a ...any) {
	r.Notes = append(r.Notes, fmt.Sprintf(format, a...))
}

// SortedKeys returns m's keys in order.
func SortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
