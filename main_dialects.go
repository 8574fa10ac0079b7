package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"

	"partyline/server"
)

// dialectFlags registers each dialect's flags.
func dialectFlags(fs *flag.FlagSet, d *server.Dialects) {
	fs.IntVar(&d.Party.CodeLength, "room-code-length", d.Party.CodeLength, "party room code length")
	fs.IntVar(&d.Party.MaxClients, "party-max-clients", d.Party.MaxClients, "upper bound of maxClients (also its value when a create omits it)")
	fs.BoolVar(&d.Party.StrictReconnect, "party-strict-reconnect", false, "a token is required to replace a clientId")
	fs.IntVar(&d.Party.HistorySize, "party-history-size", d.Party.HistorySize, "party: frames of history kept per room for recovery (0 disables history)")
	fs.IntVar(&d.Party.HistoryBytes, "party-history-bytes", d.Party.HistoryBytes, "party: bytes of history kept per room (0 disables history)")
	fs.DurationVar(&d.Party.HistoryTTL, "party-history-ttl", d.Party.HistoryTTL, "party: the oldest history frame kept (0 disables history)")
	fs.DurationVar(&d.Party.SeatGrace, "party-seat-grace", d.Party.SeatGrace, "party: a member whose connection drops keeps its seat this long (peer_away, then peer_back or peer_left); 0: peer_left at once")
	fs.BoolVar(&d.Party.Persist, "party-persist", d.Party.Persist, "party: keep rooms in <data-dir>/party so they survive a restart (single node; off if the directory is not writable)")
	fs.DurationVar(&d.Party.PersistInterval, "party-persist-interval", d.Party.PersistInterval, "party: room changes are written this often; a crash loses at most this much")
	fs.DurationVar(&d.Party.RestoreGrace, "party-restore-grace", d.Party.RestoreGrace, "party: after a restart, restored seats wait this long for their members (token required)")
	fs.IntVar(&d.Party.JoinFailuresPerMinute, "join-failures-per-minute", d.Party.JoinFailuresPerMinute, "party: failed joins (unknown room) one connection may make per minute before it is closed with 1008 (0: no limit)")
	fs.IntVar(&d.Party.JoinFailuresPerMinutePerIP, "join-failures-per-minute-per-ip", d.Party.JoinFailuresPerMinutePerIP, "party: failed joins one address may make per minute (0: no limit)")
	fs.StringVar(&d.Party.InstanceID, "instance-id", "", "party, party-v2: \"instance\" in created, {instance} in party-v2 controller URLs and the X-Instance-Id header of GET /room/CODE")
	fs.StringVar(&d.Party.Region, "region", "", "party, party-v2: \"region\" in created and the region label of their /metrics")
	fs.DurationVar(&d.Party.EmptyRoomTTL, "party-empty-room-ttl", d.Party.EmptyRoomTTL, "party, party-v2: a room created through POST /api/rooms is discarded if nobody joins it within this")
	fs.StringVar(&d.Party.AuthURL, "party-auth-url", "", "party, party-v2: join hook `URL`: every create and join is POSTed there first and proceeds on 2xx, is refused with the answer's error on 4xx, and with \"authorization unavailable\" otherwise (docs/api.md \"Join hook\"); none: no hook")
	fs.DurationVar(&d.Party.AuthTimeout, "party-auth-timeout", d.Party.AuthTimeout, "party, party-v2: the join hook must answer within this (from the create or join), or the join is refused with \"authorization unavailable\"")
	fs.IntVar(&d.Party.AuthConcurrency, "party-auth-concurrency", d.Party.AuthConcurrency, "party, party-v2: join-hook calls at once per dialect (as many more wait); beyond, a create or join is refused with \"authorization unavailable\" at once")
	fs.IntVar(&d.Teams.Teams, "teams", d.Teams.Teams, "number of teams in the teams dialect (ids 1..N)")
	fs.DurationVar(&d.Channels.Heartbeat, "channels-heartbeat", d.Channels.Heartbeat, "channels heartbeat period")
	fs.DurationVar(&d.Channels.HeartbeatTimeout, "channels-heartbeat-timeout", d.Channels.HeartbeatTimeout, "channels: identity lost after no heartbeat reply for")
	fs.DurationVar(&d.Channels.AuthDelay, "channels-auth-delay", d.Channels.AuthDelay, "channels: a claimed identity becomes authenticated after")
	fs.StringVar(&d.JWT.Secret, "jwt-secret", "", "chat/presence: HMAC secret for HS256/384/512 tokens")
	fs.StringVar(&d.JWT.PublicKeyFile, "jwt-public-key", "", "chat/presence: PEM `FILE` with the RSA, ECDSA or Ed25519 public key of RS*/PS*/ES*/EdDSA tokens")
	fs.StringVar(&d.JWT.JWKSFile, "jwt-jwks", "", "chat/presence: JWKS `FILE`, keys chosen by kid, re-read when it changes")
	fs.DurationVar(&d.JWT.Leeway, "jwt-leeway", d.JWT.Leeway, "chat/presence: clock leeway for token exp/nbf")
	fs.StringVar(&d.JWT.Issuer, "jwt-issuer", "", "chat/presence: required token issuer (iss), if set")
	fs.StringVar(&d.JWT.Audience, "jwt-audience", "", "chat/presence: required token audience (aud), if set")
	fs.StringVar(&d.JWT.UsernameClaim, "jwt-username-claim", d.JWT.UsernameClaim, "chat/presence: token claim holding the username (sub is the fallback)")
	fs.DurationVar(&d.Presence.AuthTimeout, "auth-timeout", d.Presence.AuthTimeout, "chat/presence: AUTH must arrive within")
	fs.DurationVar(&d.Presence.Grace, "presence-grace", d.Presence.Grace, "offline only after this long without a connection")
	fs.IntVar(&d.Presence.MaxSubscriptions, "presence-max-subscriptions", d.Presence.MaxSubscriptions, "presence: names one connection may subscribe to")
	fs.IntVar(&d.Rooms.MaxPerConnection, "rooms-max-per-connection", d.Rooms.MaxPerConnection, "rooms: rooms one connection may be in")
	fs.Var((*byteSize)(&d.Presence.StoreMinFree), "store-min-free", "store writes are refused (chat: \"storage full\") while its disk has less free space than this `SIZE` (bytes, or with KiB/MiB/GiB, KB/MB/GB); 0 disables")
	fs.DurationVar(&d.Presence.StoreCloseTimeout, "store-close-timeout", d.Presence.StoreCloseTimeout, "shutdown gives up waiting for the store after this (acknowledged writes are in its WAL)")
	fs.Float64Var(&d.Presence.ChatMaxMessagesPerSecond, "chat-max-messages-per-second", 0, "chat: messages one user may send per second (burst as many); 0: no limit")
	fs.Var((*byteSize)(&d.Presence.ChatMaxBytesPerDay), "chat-max-bytes-per-day", "chat: message content one user may store per UTC day and node, `SIZE` as for --store-min-free; 0: no limit")
}

// byteSize is a flag of a number of bytes: 67108864, 64MiB, 64M, 1.5GB.
// Binary suffixes (KiB, MiB, GiB, K, M, G) are powers of 1024; KB, MB, GB
// powers of 1000.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }

func (b *byteSize) Set(v string) error {
	s := strings.TrimSpace(v)
	mult := 1.0
	for _, u := range []struct {
		suffix string
		mult   float64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"TiB", 1 << 40}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"TB", 1e12}, {"K", 1 << 10}, {"M", 1 << 20}, {"G", 1 << 30}, {"T", 1 << 40}, {"B", 1}} {
		if len(s) > len(u.suffix) && strings.EqualFold(s[len(s)-len(u.suffix):], u.suffix) {
			s, mult = strings.TrimSpace(s[:len(s)-len(u.suffix)]), u.mult
			break
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f < 0 || f*mult > 1<<62 {
		return fmt.Errorf("%q is not a size in bytes (e.g. 64MiB)", v)
	}
	*b = byteSize(f * mult)
	return nil
}
