package server

import (
	"context"
	"strconv"
	"testing"

	"github.com/panjf2000/gnet/v2"

	"partyline/routing"
)

// nopGC is a gnet.Conn whose writes succeed at once (the kernel's cost of a
// write is not partyline's); other methods are not called by a flush.
type nopGC struct {
	gnet.Conn
	n int
}

func (g *nopGC) Writev(bs [][]byte) (int, error) {
	k := 0
	for _, b := range bs {
		k += len(b)
	}
	g.n += k
	return k, nil
}

func (g *nopGC) OutboundBuffered() int { return 0 }

// nopEL is an event loop whose tasks are run by the benchmark itself.
type nopEL struct{ gnet.EventLoop }

func (nopEL) Execute(context.Context, gnet.Runnable) error { return nil }

// BenchmarkLoopFlush: one flush pass of a loop with conns open
// connections that each have frames queued (direct: Send from another
// loop; fanout: a room of those connections broadcasting through its
// Fanout, which the pass delivers first). ns/frame is the engine's cost per
// delivered frame, the write system call excluded.
func BenchmarkLoopFlush(b *testing.B) {
	for _, tc := range []struct {
		conns, frames int
		fanout        bool
	}{{1000, 1, false}, {1000, 1, true}, {10000, 1, true}, {100, 16, false}, {100, 16, true}} {
		name := "direct"
		if tc.fanout {
			name = "fanout"
		}
		b.Run(name+"/conns="+strconv.Itoa(tc.conns)+"/frames="+strconv.Itoa(tc.frames), func(b *testing.B) {
			s := &Server{cfg: Defaults(), metrics: newMetrics("t", nil)}
			l := &loop{el: nopEL{}, srv: s}
			h := routing.NewHub()
			h.SetFanoutMin(1)
			r := h.Create("R", 0)
			conns := make([]*conn, tc.conns)
			for i := range conns {
				conns[i] = &conn{gc: &nopGC{}, loop: l, srv: s, state: stateOpen}
				if _, err := r.Join(&routing.Member{ID: strconv.Itoa(i), Conn: conns[i]}, nil, nil); err != nil {
					b.Fatal(err)
				}
			}
			f := routing.NewTextFrom([]byte(`{"type":"message","from":"a","data":"hello","seq":1}`))
			defer f.Release()
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				for range tc.frames {
					if tc.fanout {
						r.Broadcast(f, nil, false)
					} else {
						for _, c := range conns {
							c.Send(f, false)
						}
					}
				}
				l.flush()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tc.conns*tc.frames), "ns/frame")
		})
	}
}
