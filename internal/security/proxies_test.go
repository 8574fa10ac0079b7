package security

import (
	"net/netip"
	"strings"
	"testing"
)

func TestClientAddr(t *testing.T) {
	proxies, err := ParseProxies("10.0.0.0/8, 127.0.0.1,::1")
	if err != nil {
		t.Fatal(err)
	}
	none, _ := ParseProxies("")
	cases := []struct {
		name   string
		p      *Proxies
		peer   string
		xff    []string
		realIP string
		want   string
	}{
		{"no proxies: XFF is ignored", none, "203.0.113.9", []string{"1.2.3.4"}, "", "203.0.113.9"},
		{"no proxies: X-Real-IP is ignored", none, "203.0.113.9", nil, "1.2.3.4", "203.0.113.9"},
		{"nil proxies", nil, "203.0.113.9", []string{"1.2.3.4"}, "1.2.3.4", "203.0.113.9"},
		{"untrusted peer spoofs", proxies, "203.0.113.9", []string{"1.2.3.4"}, "1.2.3.4", "203.0.113.9"},
		{"trusted peer, one hop", proxies, "10.1.2.3", []string{"198.51.100.7"}, "", "198.51.100.7"},
		{"trusted peer, spoofed left entry", proxies, "10.1.2.3", []string{"1.2.3.4, 198.51.100.7"}, "", "198.51.100.7"},
		{"chain of trusted hops", proxies, "127.0.0.1", []string{"1.2.3.4, 198.51.100.7, 10.9.9.9"}, "", "198.51.100.7"},
		{"several header lines", proxies, "127.0.0.1", []string{"1.2.3.4", "198.51.100.7", "10.9.9.9"}, "", "198.51.100.7"},
		{"all trusted: leftmost", proxies, "127.0.0.1", []string{"10.0.0.1, 10.0.0.2"}, "", "10.0.0.1"},
		{"garbage ends the walk at the last believed hop", proxies, "127.0.0.1", []string{"198.51.100.7, junk, 10.0.0.2"}, "", "10.0.0.2"},
		{"port and brackets", proxies, "::1", []string{"[2001:db8::1]:443"}, "", "2001:db8::1"},
		{"ipv4 with port", proxies, "::1", []string{"198.51.100.7:5555"}, "", "198.51.100.7"},
		{"X-Real-IP without XFF", proxies, "10.1.2.3", nil, "198.51.100.7", "198.51.100.7"},
		{"XFF wins over X-Real-IP", proxies, "10.1.2.3", []string{"198.51.100.8"}, "198.51.100.7", "198.51.100.8"},
		{"invalid X-Real-IP", proxies, "10.1.2.3", nil, "nope", "10.1.2.3"},
		{"mapped peer", proxies, "::ffff:10.1.2.3", []string{"198.51.100.7"}, "", "198.51.100.7"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := c.p.ClientAddr(netip.MustParseAddr(c.peer), c.xff, c.realIP)
			if got.String() != c.want {
				t.Fatalf("got %s, want %s", got, c.want)
			}
		})
	}
}

func TestParseProxies(t *testing.T) {
	p, err := ParseProxies("10.0.0.0/8,192.168.1.1,::ffff:172.16.0.0/108")
	if err != nil {
		t.Fatal(err)
	}
	for a, want := range map[string]bool{"10.200.0.1": true, "192.168.1.1": true, "192.168.1.2": false, "172.16.5.5": true, "172.32.0.1": false} {
		if got := p.Trusted(netip.MustParseAddr(a)); got != want {
			t.Errorf("Trusted(%s) = %v, want %v", a, got, want)
		}
	}
	for _, bad := range []string{"10.0.0.0/33", "example.com", "1.2.3"} {
		if _, err := ParseProxies(bad); err == nil {
			t.Errorf("ParseProxies(%q) accepted", bad)
		}
	}
}

// FuzzClientAddr: whatever the headers, ClientAddr does not panic, an
// untrusted peer is its own client, and a trusted peer's client is the
// peer or an address the headers name.
func FuzzClientAddr(f *testing.F) {
	f.Add("10.0.0.1", "1.2.3.4, 10.0.0.2", "")
	f.Add("203.0.113.1", "127.0.0.1", "127.0.0.1")
	f.Add("10.0.0.1", "", "[::1]:80")
	f.Add("10.0.0.1", ",,, ,[2001:db8::1]:443,junk", "x")
	p, err := ParseProxies("10.0.0.0/8,127.0.0.1")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, peer, xff, realIP string) {
		pa, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		got := p.ClientAddr(pa, []string{xff}, realIP)
		if !p.Trusted(pa) {
			if got != pa.Unmap() {
				t.Fatalf("untrusted peer %s: client %s", pa, got)
			}
			return
		}
		if got == pa.Unmap() {
			return
		}
		for _, f := range append(strings.Split(xff, ","), realIP) {
			if a, ok := parseHop(strings.TrimSpace(f)); ok && a == got {
				return
			}
		}
		t.Fatalf("client %s is neither the peer nor named in %q / %q", got, xff, realIP)
	})
}
