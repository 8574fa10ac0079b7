package server

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/gobwas/ws"

	"partyline/dialect"
)

// binding is one listener's routing rule.
type binding struct {
	addr    string
	dialect dialect.Dialect // nil: route by path
}

// registry maps path prefixes to dialects. Built once, then read-only.
type registry struct {
	byName map[string]dialect.Dialect
	def    dialect.Dialect
}

func newRegistry(ds []dialect.Dialect, def string) (*registry, error) {
	r := &registry{byName: map[string]dialect.Dialect{}}
	for _, d := range ds {
		if _, dup := r.byName[d.Name()]; dup {
			return nil, fmt.Errorf("dialect %q registered twice", d.Name())
		}
		r.byName[d.Name()] = d
	}
	var ok bool
	if r.def, ok = r.byName[def]; !ok {
		return nil, fmt.Errorf("default dialect %q: %w", def, errUnknownDialect)
	}
	return r, nil
}

var errUnknownDialect = fmt.Errorf("unknown dialect")

func (r *registry) lookup(name string) (dialect.Dialect, error) {
	if d, ok := r.byName[name]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("%w %q (known: %s)", errUnknownDialect, name, strings.Join(r.names(), ", "))
}

func (r *registry) names() []string {
	var n []string
	for k := range r.byName {
		n = append(n, k)
	}
	return n
}

var errNotFound = ws.RejectConnectionError(ws.RejectionStatus(404), ws.RejectionReason("no dialect at this path"))

func takesParam(d dialect.Dialect) bool {
	p, ok := d.(dialect.Param)
	return ok && p.TakesParam()
}

// route picks the dialect for a request path on listener b and extracts the
// path parameter. Prefixes match whole segments: /party and /party/ are
// party, /partyx is not.
func (r *registry) route(b *binding, path string) (dialect.Dialect, string, error) {
	if b != nil && b.dialect != nil {
		if !takesParam(b.dialect) {
			return b.dialect, "", nil
		}
		p, err := url.PathUnescape(strings.TrimPrefix(path, "/"))
		if err != nil {
			return nil, "", ws.RejectConnectionError(ws.RejectionStatus(400), ws.RejectionReason("bad path encoding"))
		}
		return b.dialect, p, nil
	}
	if path == "/" || path == "" {
		return r.def, "", nil
	}
	if path[0] != '/' {
		return nil, "", errNotFound
	}
	seg, rest, hasRest := strings.Cut(path[1:], "/")
	d, ok := r.byName[seg]
	if !ok {
		return nil, "", errNotFound
	}
	if !takesParam(d) {
		if hasRest && rest != "" {
			return nil, "", errNotFound
		}
		return d, "", nil
	}
	p, err := url.PathUnescape(rest)
	if err != nil {
		return nil, "", ws.RejectConnectionError(ws.RejectionStatus(400), ws.RejectionReason("bad path encoding"))
	}
	return d, p, nil
}
