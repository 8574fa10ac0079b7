package party

import (
	"net"
	"strconv"
	"strings"

	"partyline/codec"
)

// Controller URLs (party-v2 create.url) and the size of retained state as
// Party-Sockets 2.x measures both.

const maxURLBytes = 512

// checkURL validates a create's url (raw JSON) in 2.x's order and returns
// the template, or the error text.
func checkURL(raw []byte) (string, string) {
	u, ok := codec.Str(raw)
	if !ok {
		return "", "url must be a string"
	}
	if len(u) > maxURLBytes {
		return "", "url too large"
	}
	for i := 0; i < len(u); i++ {
		if u[i] <= 0x20 || u[i] == 0x7f {
			return "", "url must not contain spaces or control characters"
		}
	}
	// The first {NAME}: from a '{', the shortest run up to a '}'.
	for rest := u; ; {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(rest[open+1:], '}')
		if end < 0 {
			break
		}
		name := rest[open+1 : open+1+end]
		if name != "room" && name != "instance" {
			return "", "Unknown url placeholder: {" + name + "}"
		}
		rest = rest[open+1+end+1:]
	}
	bare := strings.ReplaceAll(strings.ReplaceAll(u, "{room}", ""), "{instance}", "")
	if strings.ContainsAny(bare, "{}") {
		return "", "url has an unmatched placeholder brace"
	}
	sample := strings.ReplaceAll(strings.ReplaceAll(u, "{room}", "room"), "{instance}", "instance")
	scheme, ok := parseURL(sample)
	if !ok {
		return "", "url is not a valid URL"
	}
	if !strings.EqualFold(scheme, "https") {
		return "", "url must be an https URL"
	}
	return u, ""
}

// resolveURL fills a checked template: {room} is the code, {instance} the
// instance percent-encoded as JavaScript's encodeURIComponent does.
func resolveURL(tmpl, code, instance string) string {
	return strings.NewReplacer("{room}", code, "{instance}", encodeURIComponent(instance)).Replace(tmpl)
}

func encodeURIComponent(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

// parseURL reports whether s is an absolute URL as the WHATWG URL Standard
// parses one (for the cases that matter here: a scheme, and for the special
// schemes a host and port that parse), and its scheme. Input with spaces
// or control characters was refused before.
func parseURL(s string) (scheme string, ok bool) {
	colon := strings.IndexByte(s, ':')
	if colon <= 0 || !isAlpha(s[0]) {
		return "", false
	}
	scheme = s[:colon]
	for i := 1; i < len(scheme); i++ {
		c := scheme[i]
		if !isAlpha(c) && !('0' <= c && c <= '9') && c != '+' && c != '-' && c != '.' {
			return "", false
		}
	}
	switch strings.ToLower(scheme) {
	case "http", "https", "ws", "wss", "ftp":
	default:
		return scheme, true // file: and the opaque schemes take any rest
	}
	rest := strings.TrimLeft(s[colon+1:], `/\`)
	if end := strings.IndexAny(rest, `/\?#`); end >= 0 {
		rest = rest[:end]
	}
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		rest = rest[at+1:]
	}
	host, port := rest, ""
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return "", false
		}
		ip := net.ParseIP(rest[1:end])
		if ip == nil || !strings.Contains(rest[1:end], ":") {
			return "", false
		}
		host, port = "", rest[end+1:]
		if port != "" {
			if port[0] != ':' {
				return "", false
			}
			port = port[1:]
		}
	} else {
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i+1:]
		}
		if !validHost(host) {
			return "", false
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 0 || n > 65535 || strings.TrimLeft(port, "0123456789") != "" {
			return "", false
		}
	}
	return scheme, true
}

func isAlpha(c byte) bool { return 'a' <= c|0x20 && c|0x20 <= 'z' }

// validHost checks a special URL's domain: not empty, no forbidden domain
// code point once percent-decoded, and an IPv4 address when its last label
// is a number.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	var dec strings.Builder
	for i := 0; i < len(h); i++ {
		if h[i] == '%' && i+2 < len(h) && isHex(h[i+1]) && isHex(h[i+2]) {
			v, _ := strconv.ParseUint(h[i+1:i+3], 16, 8)
			dec.WriteByte(byte(v))
			i += 2
			continue
		}
		dec.WriteByte(h[i])
	}
	d := dec.String()
	for i := 0; i < len(d); i++ {
		if c := d[i]; c <= 0x20 || c == 0x7f || strings.IndexByte("#%/:<>?@[\\]^|", c) >= 0 {
			return false
		}
	}
	labels := strings.Split(strings.TrimSuffix(d, "."), ".")
	last := labels[len(labels)-1]
	if last == "" || strings.TrimLeft(last, "0123456789") != "" {
		return true // a domain, not an address
	}
	if len(labels) > 4 {
		return false
	}
	for i, l := range labels {
		n, err := strconv.ParseUint(l, 10, 64)
		limit := uint64(255)
		if i == len(labels)-1 {
			limit = 1<<(8*(5-len(labels))) - 1
		}
		if err != nil || n > limit {
			return false
		}
	}
	return true
}

func isHex(c byte) bool { return '0' <= c && c <= '9' || 'a' <= c|0x20 && c|0x20 <= 'f' }

// jsJSONSize is the UTF-8 length of the JSON value raw (valid JSON) as
// JavaScript's JSON.stringify writes it compactly: no whitespace; in
// strings only '"', '\\', control characters and lone surrogates escaped.
// Numbers count as written (JavaScript may print them shorter).
func jsJSONSize(raw []byte) int {
	n := 0
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; c {
		case ' ', '\t', '\n', '\r':
		case '"':
			k, size := jsStringSize(raw[i:])
			n += size
			i += k - 1
		default:
			n++
		}
	}
	return n
}

// jsStringSize measures the JSON string that s starts with: it returns the
// bytes it spans and its length as JSON.stringify writes it.
func jsStringSize(s []byte) (span, size int) {
	size = 2 // the quotes
	for i := 1; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			return i + 1, size
		case c != '\\':
			size++
			continue
		}
		if i+1 >= len(s) {
			return len(s), size
		}
		i++
		switch s[i] {
		case '"', '\\', 'b', 'f', 'n', 'r', 't':
			size += 2
		case 'u':
			u := hex4(s, i+1)
			i += 4
			switch {
			case u == '\b' || u == '\f' || u == '\n' || u == '\r' || u == '\t' || u == '"' || u == '\\':
				size += 2
			case u < 0x20:
				size += 6
			case u < 0x80:
				size++
			case u < 0x800:
				size += 2
			case u >= 0xd800 && u < 0xdc00 && i+6 < len(s) && s[i+1] == '\\' && s[i+2] == 'u' &&
				hex4(s, i+3) >= 0xdc00 && hex4(s, i+3) < 0xe000:
				size += 4 // a surrogate pair: one 4-byte character
				i += 6
			case u >= 0xd800 && u < 0xe000:
				size += 6 // a lone surrogate stays escaped
			default:
				size += 3
			}
		default: // '/'
			size++
		}
	}
	return len(s), size
}

func hex4(s []byte, at int) int {
	if at+4 > len(s) {
		return 0
	}
	v, err := strconv.ParseUint(string(s[at:at+4]), 16, 16)
	if err != nil {
		return 0
	}
	return int(v)
}
