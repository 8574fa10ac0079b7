package backplane

import "context"

// Entry is a record of a Registry: its value and its revision (the
// compare-and-set token for Update and Delete).
type Entry struct {
	Value    []byte
	Revision uint64
}

// Registry is a bucket of records shared by every node, written with
// compare-and-set: a create succeeds only if the key is absent, an update
// or a delete only at the record's current revision. Errors wrap
// ErrConflict (the compare-and-set lost: the key exists, or changed since
// the revision given) and ErrNotFound (no such key), so errors.Is finds
// them; their text is the implementation's. Every method blocks (a
// worker, or an HTTP goroutine) until ctx ends at most.
type Registry interface {
	Get(ctx context.Context, key string) (Entry, error)
	// Create writes key if it is absent; it returns the new revision.
	Create(ctx context.Context, key string, value []byte) (uint64, error)
	// Update writes key if its revision is still rev.
	Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error)
	// Delete removes key if its revision is still rev (any revision if
	// rev is 0).
	Delete(ctx context.Context, key string, rev uint64) error
	// Purge removes key and every earlier revision of it, whatever its
	// revision.
	Purge(ctx context.Context, key string) error
	// Keys lists the keys prefix+X where X holds no '.' (prefix ends
	// with '.'); with an error (ctx's) when ctx ended first, the keys
	// listed so far. A key may be listed twice.
	Keys(ctx context.Context, prefix string) ([]string, error)
}
