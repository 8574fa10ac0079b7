package channels_test

import (
	"encoding/json"
	"testing"
	"time"

	"partyline/backplane"
	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/channels"
	"partyline/dialect/dialecttest"
)

// FuzzChannels feeds a sequence of chunks (split at 0x00) to two sessions of
// one channel: a chunk starting with 0x01 fires the first session's timer,
// one starting with 0x02 is a message from the second session, anything
// else a message from the first. It must never panic, every reply must be a
// JSON object of a known shape, the timer must always be armed, and closing
// both sessions must delete the channel.
func FuzzChannels(f *testing.F) {
	for _, s := range []string{
		"{\"type\":\"identity\",\"user\":\"bob\"}\x00\x01\x00{\"type\":\"heartbeat\"}\x00\x01\x00{\"type\":\"message\",\"text\":\"hi\"}",
		"{\"type\":\"identity\",\"user\":\"bob\"}\x00\x02{\"type\":\"identity\",\"user\":\"bob\"}\x00{\"type\":\"identity\",\"user\":\"al\"}\x00\x02{\"type\":\"identity\",\"user\":\"bob\"}",
		"{\"type\":\"message\",\"text\":\"\\u0000\\\"\"}", "{\"type\":5}", "[]", "{", "", "\x01\x00\x01\x00\x01",
		"{\"type\":\"identity\",\"user\":\"\\ud83d\\ude00\"}", "{\"type\":\"shout\"}", "\xff",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg := channels.Config{Heartbeat: time.Millisecond, HeartbeatTimeout: 3 * time.Millisecond, AuthDelay: 2 * time.Millisecond}
		d := channels.New(cfg)
		d.UseBackplane(inline{backplane.NewLocal("", nil, 0)})
		req := dialect.Request{Path: "/channels/fuzz", Param: "fuzz"}
		if err := d.Accept(&req); err != nil {
			t.Fatal(err)
		}
		a, b := dialecttest.New(req), dialecttest.New(req)
		sa, sb := d.Open(a), d.Open(b)
		for _, chunk := range dialecttest.Split(data, 32) {
			switch {
			case len(chunk) > 0 && chunk[0] == 1:
				sa.OnTimer(a.Timer())
			case len(chunk) > 0 && chunk[0] == 2:
				sb.OnMessage(codec.KindText, chunk[1:])
			default:
				sa.OnMessage(codec.KindText, chunk)
			}
			a.RunTasks() // the answers of claims
			b.RunTasks()
			if a.Timer().IsZero() || b.Timer().IsZero() {
				t.Fatal("a session left its timer unarmed")
			}
		}
		sa.OnClose()
		sb.OnClose()
		for _, c := range []*dialecttest.Conn{a, b} {
			for _, p := range c.Frames() {
				checkReply(t, p)
			}
		}
		if n := d.Rooms(); n != 0 {
			t.Fatalf("%d channels left after every connection closed", n)
		}
	})
}

// inline is a single-node backplane whose workers run on the caller's
// goroutine: a session driven by hand has queued its follow-up (Conn.Do)
// when the call returns.
type inline struct{ *backplane.Local }

func (inline) Go(fn func()) bool { fn(); return true }

func checkReply(t *testing.T, p []byte) {
	t.Helper()
	m := dialecttest.Reply(t, p)
	str := func(k string) bool { _, ok := m[k].(string); return ok }
	tf := func(k string) bool { return m[k] == "true" || m[k] == "false" }
	ok := false
	switch m["type"] {
	case "connection":
		ok = len(m) == 2 && m["id"] == "fuzz"
	case "heartbeat":
		ok = len(m) == 2 && tf("authenticated")
	case "identity":
		ok = len(m) == 2 && tf("success")
	case "error":
		ok = len(m) == 2 && str("message")
	case "message":
		_, num := m["timestamp"].(json.Number)
		ok = len(m) == 4 && str("text") && str("user") && num
	}
	if !ok {
		t.Fatalf("unexpected reply %s", p)
	}
}

// TestTimerSchedule drives one session's single timer by hand: the timer
// always points at the earliest of the next heartbeat, the authentication
// and the heartbeat timeout, and each fires in turn.
func TestTimerSchedule(t *testing.T) {
	// The session reads a clock that moves only when told (the timers are
	// driven by hand): the schedule does not depend on how fast the
	// machine runs the test. It opens at t0; its messages come 10ms later.
	t0 := time.Now()
	now := t0
	cfg := channels.Config{Heartbeat: time.Second, HeartbeatTimeout: 5 * time.Second, AuthDelay: 300 * time.Millisecond,
		Now: func() time.Time { return now }}
	d := channels.New(cfg)
	d.UseBackplane(inline{backplane.NewLocal("", nil, 0)})
	req := dialect.Request{Param: "timer"}
	c := dialecttest.New(req)
	s := d.Open(c)
	now = t0.Add(10 * time.Millisecond)
	near := func(got, want time.Time) {
		t.Helper()
		if diff := got.Sub(want); diff < -50*time.Millisecond || diff > 50*time.Millisecond {
			t.Fatalf("timer at %v, want about %v", got.Sub(t0), want.Sub(t0))
		}
	}
	kinds := func() []string {
		t.Helper()
		ms, err := c.Msgs()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, m := range ms {
			k := m["type"].(string)
			for _, f := range []string{"authenticated", "success", "message"} {
				if v, ok := m[f].(string); ok {
					k += ":" + v
				}
			}
			out = append(out, k)
		}
		return out
	}
	eq := func(got []string, want ...string) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("frames %q, want %q", got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("frames %q, want %q", got, want)
			}
		}
	}
	eq(kinds(), "connection")
	near(c.Timer(), t0.Add(time.Second)) // first heartbeat

	s.OnMessage(codec.KindText, []byte(`{"type":"identity","user":"bob"}`))
	c.RunTasks() // the claim's answer
	eq(kinds(), "identity:true")
	authAt := c.Timer()
	near(authAt, t0.Add(300*time.Millisecond)) // authentication comes first

	s.OnMessage(codec.KindText, []byte(`{"type":"message","text":"x"}`))
	eq(kinds(), "error:not authenticated")
	s.OnTimer(authAt)
	eq(kinds()) // authentication sends nothing by itself
	near(c.Timer(), t0.Add(time.Second))
	s.OnMessage(codec.KindText, []byte(`{"type":"message","text":"x"}`))
	eq(kinds(), "message")

	s.OnTimer(c.Timer())
	eq(kinds(), "heartbeat:true")
	near(c.Timer(), t0.Add(2*time.Second))
	// No reply from now on: heartbeats at 2s..5s, then the timeout (5s
	// after the claim) takes the identity before the 6s heartbeat.
	for i := 2; i <= 5; i++ {
		s.OnTimer(c.Timer())
		eq(kinds(), "heartbeat:true")
	}
	lost := c.Timer()
	near(lost, t0.Add(5*time.Second))
	s.OnTimer(lost)
	eq(kinds())
	near(c.Timer(), t0.Add(6*time.Second))
	s.OnTimer(c.Timer())
	eq(kinds(), "heartbeat:false")
	// A late timer (the loop fell behind) sends one heartbeat, not a burst.
	s.OnTimer(t0.Add(20 * time.Second))
	eq(kinds(), "heartbeat:false")
	near(c.Timer(), t0.Add(21*time.Second))
	s.OnClose()
	if d.Rooms() != 0 {
		t.Fatal("channel not deleted")
	}
}
