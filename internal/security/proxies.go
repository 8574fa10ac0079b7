package security

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// Proxies is the set of trusted reverse proxies (--trusted-proxies): only
// a request whose peer is in it may name its client in X-Forwarded-For or
// X-Real-IP. The zero value (and nil) trusts no one, so that a header can
// never spoof an address. The WebSocket handshake and the HTTP API both
// find a request's client with ClientAddr. Read-only after parsing: safe
// from any goroutine.
type Proxies struct {
	nets []netip.Prefix
}

// ParseProxies parses a comma-separated list of CIDR prefixes or single
// addresses ("10.0.0.0/8,127.0.0.1,::1"); "" is none.
func ParseProxies(s string) (*Proxies, error) {
	p := &Proxies{}
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if strings.Contains(f, "/") {
			pfx, err := netip.ParsePrefix(f)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: not a CIDR prefix or address", f)
			}
			if pfx.Addr().Is4In6() {
				pfx = netip.PrefixFrom(pfx.Addr().Unmap(), max(pfx.Bits()-96, 0))
			}
			p.nets = append(p.nets, pfx.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not a CIDR prefix or address", f)
		}
		a = a.Unmap()
		p.nets = append(p.nets, netip.PrefixFrom(a, a.BitLen()))
	}
	return p, nil
}

// String lists the prefixes as ParseProxies reads them.
func (p *Proxies) String() string {
	if p == nil {
		return ""
	}
	s := make([]string, len(p.nets))
	for i, n := range p.nets {
		s[i] = n.String()
	}
	return strings.Join(s, ",")
}

// Any reports whether some proxy is trusted.
func (p *Proxies) Any() bool { return p != nil && len(p.nets) > 0 }

// Trusted reports whether a is a trusted proxy.
func (p *Proxies) Trusted(a netip.Addr) bool {
	if p == nil {
		return false
	}
	a = a.Unmap()
	for _, n := range p.nets {
		if n.Contains(a) {
			return true
		}
	}
	return false
}

// ClientAddr returns the address of the client behind a request that
// arrived from peer with the given X-Forwarded-For values (every header
// line, in order) and X-Real-IP value. Unless peer is trusted, the headers
// are ignored and the client is peer. From a trusted peer, the
// X-Forwarded-For chain is read right to left, each trusted hop naming
// the one before it: the client is the first address that is not a
// trusted proxy (or the leftmost, if all are); an entry that is not an
// address ends the walk at the last hop that was believed. Without
// X-Forwarded-For, a valid X-Real-IP is the client.
func (p *Proxies) ClientAddr(peer netip.Addr, xff []string, realIP string) netip.Addr {
	peer = peer.Unmap()
	if !p.Trusted(peer) {
		return peer
	}
	client, seen := peer, false
	for i := len(xff) - 1; i >= 0; i-- {
		v := xff[i]
		for v != "" {
			var f string
			if j := strings.LastIndexByte(v, ','); j >= 0 {
				f, v = v[j+1:], v[:j]
			} else {
				f, v = v, ""
			}
			f = strings.TrimSpace(f)
			if f == "" {
				continue
			}
			a, ok := parseHop(f)
			if !ok {
				return client
			}
			client, seen = a, true
			if !p.Trusted(a) {
				return client
			}
		}
	}
	if !seen && realIP != "" {
		if a, ok := parseHop(strings.TrimSpace(realIP)); ok {
			return a
		}
	}
	return client
}

// parseHop reads one forwarded address: "1.2.3.4", "1.2.3.4:5678",
// "2001:db8::1" or "[2001:db8::1]:5678".
func parseHop(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

// PeerAddr is the IP address of a net.Addr (a TCP or UDP peer); the zero
// Addr for anything else.
func PeerAddr(a net.Addr) netip.Addr {
	switch a := a.(type) {
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
