package msg

import (
	"sync"

	"partyline/codec"
)

// Reader is the opening every JSON dialect's OnMessage shares: refuse a
// binary frame, take a request from the pool, decode the payload into it,
// and answer a failure in the dialect's own words. The zero value is not
// usable: set the three texts.
type Reader[T any] struct {
	Binary    string // reply to a binary frame
	NotObject string // reply to valid JSON that is not an object
	Invalid   string // reply to invalid JSON

	pool sync.Pool
}

// Read decodes payload into a pooled request and returns it; the caller
// hands it back with Done once nothing refers to it (its raw fields alias
// payload). On a binary frame or a payload that is not a JSON object it
// calls fail with the matching text and returns nil. fail does not escape:
// a method value costs no allocation.
func (r *Reader[T]) Read(kind codec.Kind, payload []byte, fail func(text string)) *T {
	if kind != codec.KindText {
		fail(r.Binary)
		return nil
	}
	req, _ := r.pool.Get().(*T)
	if req == nil {
		req = new(T)
	}
	switch Decode(payload, req) {
	case OK:
		return req
	case NotObject:
		fail(r.NotObject)
	default:
		fail(r.Invalid)
	}
	r.Done(req)
	return nil
}

// Done clears req and returns it to the pool.
func (r *Reader[T]) Done(req *T) {
	var zero T
	*req = zero
	r.pool.Put(req)
}
