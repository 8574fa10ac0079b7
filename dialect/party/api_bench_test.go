package party

import (
	"testing"
	"time"

	"partyline/dialect"
)

// BenchmarkListRooms is one page of GET /api/rooms (limit 100, from a
// cursor in the middle) over 100,000 rooms: one pass over the hub.
func BenchmarkListRooms(b *testing.B) {
	cfg := Defaults()
	cfg.EmptyRoomTTL = time.Hour
	cfg.MaxRooms = 0
	cfg.CodeLength = 6
	d := New(cfg)
	var mid string
	for i := 0; i < 100_000; i++ {
		s, err := d.CreateRoom(dialect.RoomSpec{MaxClients: 8, Public: i%2 == 0})
		if err != nil {
			b.Fatal(err)
		}
		if i == 50_000 {
			mid = s.Code
		}
	}
	for _, bc := range []struct {
		name string
		f    dialect.RoomFilter
	}{{"all", dialect.RoomFilter{}}, {"public+has_space", dialect.RoomFilter{PublicOnly: true, HasSpace: true}}} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				rooms, _, err := d.ListRooms(bc.f, mid, 100)
				if err != nil || len(rooms) == 0 {
					b.Fatal(err, len(rooms))
				}
			}
		})
	}
}
