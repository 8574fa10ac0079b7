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

// batch is how many joins (or leaves) BenchmarkRoomJoin and
// BenchmarkRoomLeave time between two untimed resets of the room's size.
const batch = 1000

// BenchmarkRoomJoin: one member joins a room of about n (the joiners are
// taken out again, untimed, every batch joins).
func BenchmarkRoomJoin(b *testing.B) {
	for _, n := range []int{10, 1000, 40000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			r := benchRoom(b, n)
			ms := joiners(batch)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if _, err := r.Join(ms[i%batch], nil, nil); err != nil {
					b.Fatal(err)
				}
				if i%batch == batch-1 {
					b.StopTimer()
					for _, m := range ms {
						r.Leave(m)
					}
					b.StartTimer()
				}
			}
		})
	}
}

// BenchmarkRoomLeave: one member leaves a room of about n (the leavers
// join again, untimed, every batch leaves; they are spread over the room,
// as real departures are).
func BenchmarkRoomLeave(b *testing.B) {
	for _, n := range []int{10, 1000, 40000} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			r := benchRoom(b, n)
			ms := r.Members()
			k := min(batch, n/2)
			pick := make([]*Member, k)
			for i := range pick {
				pick[i] = ms[i*len(ms)/k]
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r.Leave(pick[i%k])
				if i%k == k-1 {
					b.StopTimer()
					for _, m := range pick {
						if _, err := r.Join(m, nil, nil); err != nil {
							b.Fatal(err)
						}
					}
					b.StartTimer()
				}
			}
		})
	}
}

func joiners(n int) []*Member {
	ms := make([]*Member, n)
	for i := range ms {
		ms[i] = &Member{ID: "j" + strconv.Itoa(i), Conn: &nopSender{id: -1 - i}}
	}
	return ms
}
