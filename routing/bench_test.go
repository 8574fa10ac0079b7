package routing

import (
	"strconv"
	"testing"
)

// Go benchmarks of the room's hot paths (make bench; bench/ measures the
// server as a whole). Sizes follow the big-room cases: a party room, a
// large lobby, an audience.

func benchRoom(b *testing.B, n int) *Room {
	b.Helper()
	r := NewHub().Create("R", 0)
	for i := range n {
		if _, err := r.Join(&Member{ID: strconv.Itoa(i), Conn: &nopSender{id: i}}, nil, nil); err != nil {
			b.Fatal(err)
		}
	}
	return r
}

// BenchmarkRoomBroadcast: one frame queued to every member but one.
func BenchmarkRoomBroadcast(b *testing.B) {
	for _, n := range []int{20, 1000, 10000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			r := benchRoom(b, n)
			f := text(`{"type":"message","from":"0","data":1}`)
			defer f.Release()
			except := r.Members()[0].Conn
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				r.Broadcast(f, except, false)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n-1), "ns/recipient")
		})
	}
}

// BenchmarkRoomJoinLeave: one member joins a room of n and leaves again
// (the room's size stays n).
func BenchmarkRoomJoinLeave(b *testing.B) {
	for _, n := range []int{10, 1000, 40000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			r := benchRoom(b, n)
			m := &Member{ID: "joiner", Conn: &nopSender{id: -1}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if _, err := r.Join(m, nil, nil); err != nil {
					b.Fatal(err)
				}
				r.Leave(m)
			}
		})
	}
}
