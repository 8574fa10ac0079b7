package main

import (
	"flag"
	"fmt"
	"strconv"

	"partyline/internal/security"
	"partyline/server"
)

// limitFlags registers the abuse limits' flags (server/abuse.go) and the
// room limits shared by the room-creating dialects.
func limitFlags(fs *flag.FlagSet, cfg *server.Config) {
	a := &cfg.AbuseLimits
	fs.Float64Var(&a.MaxMessagesPerSec, "max-messages-per-second", a.MaxMessagesPerSec, "data messages one connection may send per second; over it they are dropped with an error reply (0: no limit)")
	fs.IntVar(&a.MessageBurst, "message-burst", a.MessageBurst, "messages one connection may send at once above --max-messages-per-second (0: twice the rate)")
	fs.Int64Var(&a.MaxBytesPerSec, "max-bytes-per-second", a.MaxBytesPerSec, "message payload bytes one connection may send per second, burst twice that or --max-message-size (0: no limit)")
	fs.DurationVar(&a.RateLimitGrace, "rate-limit-grace", a.RateLimitGrace, "a connection over its rate limit for this long is closed with 1008 \"rate limit\"")
	fs.IntVar(&a.MaxConnsPerIP, "max-connections-per-ip", a.MaxConnsPerIP, "WebSocket connections one client address may hold; more get HTTP 429 (0: no limit)")
	fs.Float64Var(&a.HandshakesPerSecPerIP, "handshakes-per-second-per-ip", a.HandshakesPerSecPerIP, "WebSocket handshakes one client address may make per second; more get HTTP 429 (0: no limit)")
	fs.IntVar(&a.HandshakeBurstPerIP, "handshake-burst-per-ip", a.HandshakeBurstPerIP, "handshakes one address may make at once above --handshakes-per-second-per-ip (0: the rate, at least 1)")
	roomFlags(fs, &cfg.Dialects)
	fs.Var(proxiesFlag{&a.TrustedProxies}, "trusted-proxies", "`CIDR,...` of reverse proxies whose X-Forwarded-For/X-Real-IP name the client (none: the headers are never believed)")
}

// proxiesFlag is --trusted-proxies.
type proxiesFlag struct{ p **security.Proxies }

func (f proxiesFlag) String() string {
	if f.p == nil {
		return ""
	}
	return (*f.p).String()
}

func (f proxiesFlag) Set(v string) error {
	p, err := security.ParseProxies(v)
	if err == nil {
		*f.p = p
	}
	return err
}

// roomFlags registers the room limits: --max-rooms applies to every
// room-creating dialect (party's create, a rooms join that creates one).
func roomFlags(fs *flag.FlagSet, d *server.Dialects) {
	fs.Var(intsFlag{&d.Party.MaxRooms, &d.Rooms.MaxRooms}, "max-rooms", "`N` rooms one node may hold at most (party and rooms); a create past it gets an error reply (0: no limit)")
	fs.IntVar(&d.Party.RoomCreatesPerMinute, "room-creates-per-minute", d.Party.RoomCreatesPerMinute, "party: rooms one connection may create per minute (0: no limit)")
	fs.Var((*byteSize)(&d.Party.MaxStateBytesTotal), "max-state-bytes-total", "party: retained state of every room together, `SIZE` as for --store-min-free; a set_state past it gets an error reply (0: no limit)")
}

// intsFlag is one int flag stored in several places.
type intsFlag []*int

func (f intsFlag) String() string {
	if len(f) == 0 || f[0] == nil {
		return ""
	}
	return strconv.Itoa(*f[0])
}

func (f intsFlag) Set(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil {
		return fmt.Errorf("%q is not an integer", v)
	}
	for _, p := range f {
		*p = n
	}
	return nil
}
