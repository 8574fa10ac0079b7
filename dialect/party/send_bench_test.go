package party

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"partyline/codec"
)

// BenchmarkSend measures one broadcast to a room of 20 (19 deliveries) in
// the dialect and routing alone (nopConns): party (sequenced, with and
// without history) next to party-v2, the in-process part of bench/RESULTS.md's
// "party-v2 vs party".
func BenchmarkSend(b *testing.B) {
	for _, tc := range []struct {
		name string
		open func() *Dialect
	}{
		{"party", func() *Dialect { cfg := Defaults(); _ = cfg.Validate(); return New(cfg) }},
		{"party-nohistory", func() *Dialect {
			cfg := Defaults()
			_ = cfg.Validate()
			cfg.HistorySize = 0
			return New(cfg)
		}},
		{"party-v2", func() *Dialect { cfg := Defaults(); _ = cfg.Validate(); return NewV2(cfg) }},
	} {
		b.Run(tc.name, func(b *testing.B) {
			d := tc.open()
			conns := make([]*nopConn, 20)
			sessions := make([]*session, 20)
			for i := range conns {
				conns[i] = &nopConn{id: uint64(i + 1)}
				sessions[i] = d.Open(conns[i]).(*session)
			}
			sessions[0].OnMessage(codec.KindText, []byte(`{"type":"create","clientId":"c0","maxClients":20}`))
			for i := 1; i < 20; i++ {
				sessions[i].OnMessage(codec.KindText, []byte(fmt.Sprintf(`{"type":"join","clientId":"c%d","room":"%s"}`, i, sessions[0].room.Name)))
				if sessions[i].room == nil {
					b.Fatal("join failed")
				}
			}
			msg := []byte(`{"type":"send","data":{"t":1763769600123456789,"i":12345,"s":678,"k":19,"p":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}`)
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			i := 0
			for b.Loop() {
				i++
				sessions[i%20].OnMessage(codec.KindText, msg)
			}
			// Process CPU time, not wall time: on a shared machine the
			// wall clock measures the neighbours too.
			b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N)/19, "cpu-ns/delivery")
		})
	}
}

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
