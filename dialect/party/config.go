package party

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"partyline/dialect"
)

// Config is the party dialect's configuration.
type Config struct {
	CodeLength      int  // room code length (--room-code-length)
	MaxClients      int  // upper bound (and default) of maxClients (--party-max-clients)
	StrictReconnect bool // a token is required to replace a clientId
	MaxState        int  // largest retained state, encoded bytes

	// Offsets and recovery (docs/recovery.md). A zero HistorySize,
	// HistoryBytes or HistoryTTL disables history; Defaults sets them.
	HistorySize  int           // frames kept per room (--party-history-size)
	HistoryBytes int           // bytes kept per room (--party-history-bytes)
	HistoryTTL   time.Duration // age of the oldest frame kept (--party-history-ttl)
	SeatGrace    time.Duration // a dropped member's seat is kept this long (--party-seat-grace); 0: peer_left at once

	// Persistence: rooms are kept in PersistDir ("" disables it; the
	// server sets it to <data-dir>/party when Persist, --party-persist, is
	// on and the node is not in a cluster).
	Persist         bool
	PersistDir      string
	PersistInterval time.Duration // at most this much of the latest changes is lost to a crash (--party-persist-interval)
	RestoreGrace    time.Duration // restored seats wait this long for their members (--party-restore-grace)
	StoreMinFree    int64         // commits wait while the store's disk has less free space (--store-min-free; at least 16 MiB)

	// Room-scan defences: failed joins ("room not found") a connection,
	// and an address, may make per minute; 0 disables each.
	JoinFailuresPerMinute      int
	JoinFailuresPerMinutePerIP int

	// Room limits (limits.go); 0 disables each.
	MaxRooms             int   // rooms on this node (--max-rooms)
	RoomCreatesPerMinute int   // rooms one connection may create per minute (--room-creates-per-minute)
	MaxStateBytesTotal   int64 // retained state of every room together (--max-state-bytes-total)
	// Party-Sockets 2.x (party-v2) and the HTTP answers of both dialects.
	InstanceID string        // "instance" in created, {instance} in controller URLs, X-Instance-Id (--instance-id)
	Region     string        // "region" in created (--region)
	HostGrace  time.Duration // party-v2: a hostless room is closed this long after its host dropped (120s, as 2.x)

	// EmptyRoomTTL is how long a room created through the rooms API
	// (POST /api/rooms) waits for its first member (--party-empty-room-ttl).
	EmptyRoomTTL time.Duration

	// The join hook (joinhook.go, docs/api.md "Join hook"): creates and
	// joins are POSTed to AuthURL ("" disables it) and wait for its
	// answer at most AuthTimeout; at most AuthConcurrency calls run at
	// once and as many more wait (beyond, "authorization unavailable").
	AuthURL         string        // --party-auth-url
	AuthTimeout     time.Duration // --party-auth-timeout
	AuthConcurrency int           // --party-auth-concurrency

	Logger *slog.Logger // nil: slog.Default()

	// Events receives room and member events (webhooks; events.go); nil:
	// none. The server sets it.
	Events dialect.Events
}

// Defaults returns the documented defaults.
func Defaults() Config {
	return Config{CodeLength: 4, MaxClients: 1000, MaxState: 16 << 10,
		HistorySize: 64, HistoryBytes: 256 << 10, HistoryTTL: 2 * time.Minute,
		Persist: true, PersistInterval: 100 * time.Millisecond, RestoreGrace: time.Minute,
		JoinFailuresPerMinute: 20, JoinFailuresPerMinutePerIP: 200,
		MaxRooms: 100_000, RoomCreatesPerMinute: 60, MaxStateBytesTotal: 256 << 20, HostGrace: 120 * time.Second,
		EmptyRoomTTL: time.Minute, AuthTimeout: 2 * time.Second, AuthConcurrency: 64}
}

// Validate checks c and fills zero values with defaults (history, seat
// grace and the join-failure limits keep 0: it means off).
func (c *Config) Validate() error {
	d := Defaults()
	if c.CodeLength == 0 {
		c.CodeLength = d.CodeLength
	}
	if c.CodeLength < 3 || c.CodeLength > 16 {
		return fmt.Errorf("room-code-length %d: must be 3..16", c.CodeLength)
	}
	if c.MaxClients == 0 {
		c.MaxClients = d.MaxClients
	}
	if c.MaxClients < 1 {
		return fmt.Errorf("party-max-clients %d: must be at least 1", c.MaxClients)
	}
	if c.MaxState <= 0 {
		c.MaxState = d.MaxState
	}
	if c.HistorySize < 0 || c.HistoryBytes < 0 || c.HistoryTTL < 0 || c.SeatGrace < 0 || c.RestoreGrace < 0 {
		return errors.New("party history limits and graces must not be negative")
	}
	if c.MaxRooms < 0 || c.RoomCreatesPerMinute < 0 || c.MaxStateBytesTotal < 0 {
		return errors.New("max-rooms, room-creates-per-minute and max-state-bytes-total must not be negative")
	}
	if c.JoinFailuresPerMinute < 0 || c.JoinFailuresPerMinutePerIP < 0 {
		return errors.New("join-failures-per-minute must not be negative")
	}
	if c.PersistInterval <= 0 {
		c.PersistInterval = d.PersistInterval
	}
	if c.RestoreGrace == 0 {
		c.RestoreGrace = d.RestoreGrace
	}
	if c.HostGrace < 0 {
		return errors.New("party-v2 host grace must not be negative")
	}
	if c.HostGrace == 0 {
		c.HostGrace = d.HostGrace
	}
	if c.EmptyRoomTTL < 0 {
		return errors.New("party-empty-room-ttl must not be negative")
	}
	if c.EmptyRoomTTL == 0 {
		c.EmptyRoomTTL = d.EmptyRoomTTL
	}
	return c.validateHook()
}

// validateHook checks the join hook's settings (when AuthURL is set).
func (c *Config) validateHook() error {
	if c.AuthURL == "" {
		return nil
	}
	u, err := url.Parse(c.AuthURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("party-auth-url %q: want an absolute http:// or https:// URL", c.AuthURL)
	}
	if c.AuthTimeout <= 0 {
		return fmt.Errorf("party-auth-timeout %v: must be positive", c.AuthTimeout)
	}
	if c.AuthConcurrency <= 0 {
		return fmt.Errorf("party-auth-concurrency %d: must be at least 1", c.AuthConcurrency)
	}
	return nil
}
