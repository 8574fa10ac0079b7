package main

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"partyline/server"
)

func TestParseLimitFlags(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c server.Config)
	}{
		{"defaults", nil, nil, func(t *testing.T, c server.Config) {
			a := c.AbuseLimits
			if a.MaxMessagesPerSec != 1000 || a.MessageBurst != 2000 || a.MaxBytesPerSec != 0 || a.RateLimitGrace != 5*time.Second ||
				a.MaxConnsPerIP != 0 || a.HandshakesPerSecPerIP != 0 || a.TrustedProxies.Any() {
				t.Fatalf("%+v", a)
			}
			if c.Party.MaxRooms != 100_000 || c.Rooms.MaxRooms != 100_000 || c.Party.RoomCreatesPerMinute != 60 || c.Party.MaxStateBytesTotal != 256<<20 {
				t.Fatalf("room limits: party %+v rooms %+v", c.Party, c.Rooms)
			}
		}},
		{"flags", []string{"--max-messages-per-second", "50", "--message-burst", "70", "--max-bytes-per-second", "65536",
			"--rate-limit-grace", "2s", "--max-connections-per-ip", "8", "--handshakes-per-second-per-ip", "2.5",
			"--handshake-burst-per-ip", "9", "--trusted-proxies", "10.0.0.0/8, ::1", "--max-rooms", "12",
			"--room-creates-per-minute", "3", "--max-state-bytes-total", "1MiB"}, nil, func(t *testing.T, c server.Config) {
			a := c.AbuseLimits
			if a.MaxMessagesPerSec != 50 || a.MessageBurst != 70 || a.MaxBytesPerSec != 65536 || a.RateLimitGrace != 2*time.Second ||
				a.MaxConnsPerIP != 8 || a.HandshakesPerSecPerIP != 2.5 || a.HandshakeBurstPerIP != 9 {
				t.Fatalf("%+v", a)
			}
			if !a.TrustedProxies.Trusted(netip.MustParseAddr("10.1.2.3")) || !a.TrustedProxies.Trusted(netip.MustParseAddr("::1")) ||
				a.TrustedProxies.Trusted(netip.MustParseAddr("127.0.0.1")) {
				t.Fatalf("trusted proxies %v", a.TrustedProxies)
			}
			if c.Party.MaxRooms != 12 || c.Rooms.MaxRooms != 12 || c.Party.RoomCreatesPerMinute != 3 || c.Party.MaxStateBytesTotal != 1<<20 {
				t.Fatalf("room limits: party %+v rooms %+v", c.Party, c.Rooms)
			}
		}},
		{"env and 0 disables", nil, map[string]string{"PARTYLINE_MAX_MESSAGES_PER_SECOND": "0", "PARTYLINE_TRUSTED_PROXIES": "127.0.0.1",
			"PARTYLINE_MAX_ROOMS": "0"}, func(t *testing.T, c server.Config) {
			if c.MaxMessagesPerSec != 0 || !c.TrustedProxies.Trusted(netip.MustParseAddr("127.0.0.1")) || c.Party.MaxRooms != 0 || c.Rooms.MaxRooms != 0 {
				t.Fatalf("%+v party %+v", c.AbuseLimits, c.Party)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
	for _, bad := range [][]string{
		{"--trusted-proxies", "10.0.0.0/33"}, {"--trusted-proxies", "proxy.example"}, {"--max-rooms", "many"},
		{"--max-messages-per-second", "-1"}, {"--max-connections-per-ip", "-2"}, {"--max-state-bytes-total", "-5"},
		{"--room-creates-per-minute", "-1"},
	} {
		if _, err := parseConfig(bad, envOf(nil)); err == nil {
			t.Errorf("%s accepted", strings.Join(bad, " "))
		}
	}
}
