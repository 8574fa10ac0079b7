//go:build !race

package party

import (
	"testing"
	"time"

	"partyline/codec"
)

// The single-node hot path (send -> Broker.Publish -> Room.Broadcast)
// allocates nothing; cluster mode must not change that.
func TestSendAllocationFree(t *testing.T) {
	cfg := Defaults()
	_ = cfg.Validate()
	d := New(cfg)
	a, b := &nopConn{id: 1}, &nopConn{id: 2}
	sa, sb := d.Open(a).(*session), d.Open(b).(*session)
	sa.OnMessage(codec.KindText, []byte(`{"type":"create","clientId":"a"}`))
	sb.OnMessage(codec.KindText, []byte(`{"type":"join","clientId":"b","room":"`+sa.room.Name+`"}`))
	if sb.room == nil {
		t.Fatal("join failed")
	}
	msg := []byte(`{"type":"send","data":{"x":1,"y":[1,2,3]}}`)
	before := b.sent
	if n := testing.AllocsPerRun(500, func() { sa.OnMessage(codec.KindText, msg) }); n != 0 {
		t.Fatalf("send allocates %.1f times per message", n)
	}
	if b.sent <= before {
		t.Fatal("nothing was delivered")
	}
}

// With rooms persisted, a send records its frame for the store without
// allocating either (once the room has been seen by the writer).
func TestSendAllocationFreePersisted(t *testing.T) {
	cfg := Defaults()
	_ = cfg.Validate()
	cfg.PersistDir = t.TempDir()
	cfg.PersistInterval = time.Hour // nothing is committed during the measurement
	d := New(cfg)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Shutdown() })
	if d.persist == nil {
		t.Fatal("persistence is off")
	}
	a, b := &nopConn{id: 1}, &nopConn{id: 2}
	sa, sb := d.Open(a).(*session), d.Open(b).(*session)
	sa.OnMessage(codec.KindText, []byte(`{"type":"create","clientId":"a"}`))
	sb.OnMessage(codec.KindText, []byte(`{"type":"join","clientId":"b","room":"`+sa.room.Name+`"}`))
	msg := []byte(`{"type":"send","data":{"x":1,"y":[1,2,3]}}`)
	for range 200 { // fill the history ring and the store's pending buffers
		sa.OnMessage(codec.KindText, msg)
	}
	if err := d.persist.log.Flush(); err != nil {
		t.Fatal(err)
	}
	for range 200 {
		sa.OnMessage(codec.KindText, msg)
	}
	if n := testing.AllocsPerRun(500, func() { sa.OnMessage(codec.KindText, msg) }); n > 0.05 {
		t.Fatalf("persisted send allocates %.2f times per message", n)
	}
}

// party-v2's send (broadcast and to an index) allocates nothing either.
func TestV2SendAllocationFree(t *testing.T) {
	_, host, _, _, gc := v2Room(t)
	for _, msg := range [][]byte{
		[]byte(`{"type":"send","data":{"x":1,"y":[1,2,3]}}`),
		[]byte(`{"type":"send","to":1,"data":{"x":1,"y":[1,2,3]}}`),
	} {
		before := gc.sent
		if n := testing.AllocsPerRun(500, func() { host.OnMessage(codec.KindText, msg) }); n != 0 {
			t.Fatalf("%s allocates %.1f times per message", msg, n)
		}
		if gc.sent <= before {
			t.Fatal("nothing was delivered")
		}
	}
}
