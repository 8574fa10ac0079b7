package party

import (
	"slices"
	"strconv"

	"partyline/dialect"
	"partyline/routing"
)

// A room's listing (docs/api.md): "public" marks it for the rooms API's
// public=true listing and "metadata" (any JSON, at most
// dialect.MaxMetadata bytes) is shown there. Both are additive fields of
// create and set_metadata, kept in roomState under its mu; set_metadata
// is any member's in a party room, the host's in a party-v2 room.

const (
	errMetadataSize    = "metadata too large: at most 1024 bytes of JSON"
	errPublic          = "public must be true or false"
	errHostMetadata    = "Only the host can set metadata"
	errMetadataCluster = "public and metadata are not available in cluster mode yet"
	errMetadataNeeds   = "set_metadata needs metadata or public"
	errReservedID      = `clientId "` + ServerID + `" is reserved for messages from the server`
)

// listingReq is what a create or set_metadata carried.
type listingReq struct {
	public, hasPublic bool
	meta              []byte // a copy; nil: none (or null)
	hasMeta           bool
}

// listing reads public and metadata; on failure it answers and returns false.
func (s *session) listing(req *request) (listingReq, bool) {
	l, e := parseListing(req.Public, req.Metadata)
	if e == "" && !s.d.rooms.listable() && (l.hasPublic || l.hasMeta) {
		e = errMetadataCluster
	}
	if e != "" {
		s.fail(e)
		return l, false
	}
	return l, true
}

// parseListing decodes the raw public and metadata fields ("": valid).
func parseListing(public, meta []byte) (l listingReq, errText string) {
	switch string(public) {
	case "", "null":
	case "true":
		l.public, l.hasPublic = true, true
	case "false":
		l.hasPublic = true
	default:
		return l, errPublic
	}
	if len(meta) > 0 {
		l.hasMeta = true
		if len(meta) > dialect.MaxMetadata {
			return l, errMetadataSize
		}
		if string(meta) != "null" {
			l.meta = slices.Clone(meta)
		}
	}
	return l, ""
}

// setMetadata updates the room's listing and tells every member, the
// sender included: {"type":"metadata","public":B,"metadata":M}.
func (s *session) setMetadata(req *request) {
	var r *routing.Room
	if s.d.prof.slots {
		r = s.host(errHostMetadata)
	} else if r = s.current(); r == nil {
		s.fail(errNotInRoom)
	}
	if r == nil {
		return
	}
	l, ok := s.listing(req)
	if !ok {
		return
	}
	if !l.hasPublic && !l.hasMeta {
		s.fail(errMetadataNeeds)
		return
	}
	st, _ := r.Ext().(*roomState)
	st.mu.Lock()
	defer st.mu.Unlock() // the frames of two set_metadata leave in the order they applied
	if l.hasPublic {
		st.public = l.public
	}
	if l.hasMeta {
		st.meta = l.meta
	}
	f := routing.NewText()
	f.AppendStr(`{"type":"metadata","public":`)
	f.SetBuf(strconv.AppendBool(f.Buf(), st.public))
	if st.meta != nil {
		f.AppendStr(`,"metadata":`)
		f.Append(st.meta...)
	}
	f.Append('}')
	s.d.broker.Publish(r, f.End(), nil, false)
	f.Release()
}
