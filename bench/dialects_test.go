package main

import (
	"testing"
	"time"

	"partyline/bench/internal/dialect"
	"partyline/internal/testutil"
	"partyline/server"
)

// The rooms and channels adapters against an in-process partyline: every
// send reaches every member of its room, the sender included.

func partylineAddr(t *testing.T, mutate func(*server.Config)) string {
	t.Helper()
	s := testutil.Start(t, mutate)
	return s.Addrs()[0].String()
}

func TestRoomsDialect(t *testing.T) {
	cfg := baseConfig(partylineAddr(t, nil), "rooms")
	cfg.Dialect = dialect.Rooms{}
	rep := run(t, cfg)
	if rep.Total.Opened != 60 || rep.Total.Joined != 60 || rep.Total.Created != 0 {
		t.Fatalf("setup: %+v", rep.Total)
	}
	checkDelivery(t, rep, 6) // room of 6, sender included
	if rep.Total.PeerJoined != 10*(5*6/2) {
		t.Errorf("userJoined seen %d, want %d", rep.Total.PeerJoined, 10*15)
	}
}

// party-v2: the server names rooms (6-character codes), peers are slot
// indices, a send reaches every other member.
func TestPartyV2Dialect(t *testing.T) {
	cfg := baseConfig(partylineAddr(t, nil), "rooms")
	cfg.Dialect = dialect.PartyV2{}
	rep := run(t, cfg)
	if rep.Total.Opened != 60 || rep.Total.Created != 10 || rep.Total.Joined != 50 {
		t.Fatalf("setup: %+v", rep.Total)
	}
	checkDelivery(t, rep, 5) // room of 6, sender excluded
	if rep.Total.ErrorReplies != 0 {
		t.Errorf("%d error replies", rep.Total.ErrorReplies)
	}
}

func TestChannelsDialect(t *testing.T) {
	addr := partylineAddr(t, func(c *server.Config) {
		c.Dialects.Channels.AuthDelay = 100 * time.Millisecond
		c.Dialects.Channels.Heartbeat = 100 * time.Millisecond
	})
	cfg := baseConfig(addr, "rooms")
	cfg.Dialect = dialect.Channels{}
	cfg.Warmup = 300 * time.Millisecond // past the auth delay
	rep := run(t, cfg)
	if rep.Total.Opened != 60 || rep.Total.Joined != 60 || rep.Total.Closed != 0 {
		t.Fatalf("setup: %+v", rep.Total)
	}
	checkDelivery(t, rep, 6)
	if rep.Total.ErrorReplies != 0 {
		t.Errorf("%d error replies", rep.Total.ErrorReplies)
	}
}

func TestTextStampDialects(t *testing.T) {
	st := dialect.Stamp{T: 1763769600123456789, I: 12345, S: 678, K: 19}
	for _, d := range []dialect.Dialect{dialect.Rooms{}, dialect.Channels{}} {
		out, _ := dialect.AppendSized(d, nil, nil, "r1", "", st, 150)
		if len(out) != 150 {
			t.Errorf("%s: sized send %d bytes: %s", d.Name(), len(out), out)
		}
	}
	for _, tc := range []struct {
		d   dialect.Dialect
		msg string
	}{
		{dialect.Rooms{}, `{"type":"message","room":"r1","user":"u","content":"1763769600123456789 12345 678 19 xxx","timestamp":1}`},
		{dialect.Channels{}, `{"timestamp":1,"user":"u","type":"message","text":"1763769600123456789 12345 678 19 "}`},
	} {
		ev, ok := tc.d.Parse([]byte(tc.msg))
		if !ok || ev.Kind != dialect.Message || !ev.HasStamp || ev.Stamp != st || string(ev.Peer) != "u" {
			t.Errorf("%s: Parse = %+v %v", tc.d.Name(), ev, ok)
		}
	}
	ev, _ := dialect.Channels{}.Parse([]byte(`{"type":"heartbeat","authenticated":"false"}`))
	if string(ev.Reply) != `{"type":"heartbeat"}` {
		t.Errorf("heartbeat: %+v", ev)
	}
}

func TestChat(t *testing.T) {
	addr := partylineAddr(t, func(c *server.Config) { c.Dialects.JWT.Secret = "s3cret" })
	cfg := baseConfig(addr, "chat")
	cfg.Dialect = dialect.Chat{}
	cfg.JWTSecret, cfg.GroupFrac = "s3cret", 0.5
	cfg.Conns, cfg.RoomSize, cfg.Rate = 40, 5, 10
	rep := run(t, cfg)
	if rep.Total.Opened != 40 || rep.Total.Joined != 40 {
		t.Fatalf("setup: %+v %v", rep.Total, rep.Closes)
	}
	checkDelivery(t, rep, 0)
	if rep.Counts.Acked < rep.Counts.Sent-int64(cfg.Conns) || rep.Extra["unacked_total"].(int64) != 0 {
		t.Errorf("acked %d of %d in the window, unacked at the end %v", rep.Counts.Acked, rep.Counts.Sent, rep.Extra["unacked_total"])
	}
	t.Logf("ack %+v", rep.Extra["ack_latency"])
}

func TestBigroomRoomsAndChannels(t *testing.T) {
	for _, d := range []dialect.Dialect{dialect.Rooms{}, dialect.Channels{}} {
		t.Run(d.Name(), func(t *testing.T) {
			addr := partylineAddr(t, func(c *server.Config) { c.Dialects.Channels.AuthDelay = 100 * time.Millisecond })
			cfg := baseConfig(addr, "bigroom")
			cfg.Dialect, cfg.Warmup = d, 300*time.Millisecond
			cfg.Conns, cfg.Senders, cfg.Rate = 50, 5, 50
			rep := run(t, cfg)
			checkDelivery(t, rep, 50) // the sender gets its own message too
			if rep.Completion == nil || rep.Completion.N != rep.Counts.Sent {
				t.Fatalf("completion: %+v for %d sends", rep.Completion, rep.Counts.Sent)
			}
		})
	}
}

// TestHostileMore runs the attacks of hostile_more.go against an
// in-process partyline whose short handshake timeout drops the silent
// sockets, which must then reconnect; the well-behaved rooms still get
// everything and the /healthz prober gets answers.
func TestHostileMore(t *testing.T) {
	s := testutil.Start(t, func(c *server.Config) {
		c.HandshakeWait = 200 * time.Millisecond
		c.OutboundCap = 64 << 10 // the busy room's never-readers are closed within the run
	})
	cfg := baseConfig(s.Addrs()[0].String(), "hostile")
	cfg.Duration = time.Second
	cfg.Scanners, cfg.ScanCodeLen, cfg.Silent = 1, 4, 2
	cfg.Incomplete, cfg.IncompleteBytes, cfg.IncompleteEvery = 1, 65000, 50*time.Millisecond
	cfg.HTTPAddr, cfg.HTTPIdle, cfg.HTTPProbeEvery = s.HTTPAddr().String(), 5, 20*time.Millisecond
	cfg.BusyReaders, cfg.BusyRate, cfg.SlowRcvBuf = 2, 2000, 4096
	rep := run(t, cfg)
	checkDelivery(t, rep, 5)
	x := rep.Extra
	probe, _ := x["http_probe"].(map[string]any)
	t.Logf("extra %v", x)
	if x["scan_joins"].(int64) == 0 || x["silent_connects"].(int64) <= 2 || x["incomplete_connects"].(int64) == 0 ||
		x["http_idle_connects"].(int64) < 5 || probe["n"].(int) == 0 || x["http_probe_errors"].(int64) != 0 ||
		x["busy_readers_joined"].(int64) != 2 || x["busy_sent"].(int64) == 0 {
		t.Fatalf("hostile clients: %v", x)
	}
}
