package store

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// This file lets a Pebble serve as a read index of a store whose source
// of truth is elsewhere (the cluster's JetStream chat store): replicated
// writes carry their IDs and are idempotent, and the positions of the
// sources applied so far are kept in the same atomic batch as the data,
// so that the two never disagree.

// MakeID builds an ID from a time in Unix milliseconds (the high 48 bits)
// and a 16-bit low part. It is a pure function: every node that builds the
// ID of one replicated message from the same parts gets the same ID.
func MakeID(ms int64, low uint16) ID { return ID(uint64(ms)<<16 | uint64(low)) }

// Valid reports whether every name of c is valid (see ValidName).
func (c Conv) Valid() bool { return c.valid() }

// Parts returns the group id of a group conversation (a and b empty), or
// the two users of a one-to-one conversation with a <= b (group empty).
func (c Conv) Parts() (group, a, b string) { return c.group, c.a, c.b }

// MarshalMessage encodes m's fields except the ID (From, To, GroupID,
// ChatID, Content) in the versioned binary form the store itself uses.
func MarshalMessage(m *Message) []byte { return encodeMessage(m) }

// UnmarshalMessage decodes what MarshalMessage produced into m's fields
// (m.ID is left alone).
func UnmarshalMessage(b []byte, m *Message) error { return decodeMessage(b, m) }

// appliedKey is where the position of the replication source name lives.
func appliedKey(name string) []byte { return appendName([]byte("zapplied"), name) }

// ReplicaBatch is an atomic group of replicated writes to a Pebble used as
// a read index. Every write is idempotent (applying a message or a
// membership twice changes nothing). Build it on one goroutine, then
// Commit it once; the Pebble's own Append, Join and Leave must not be used
// on the same database (they would race with the replicated writes).
type ReplicaBatch struct {
	p *Pebble
	b *pebble.Batch
}

// NewReplicaBatch starts an empty batch of replicated writes.
func (p *Pebble) NewReplicaBatch() *ReplicaBatch {
	return &ReplicaBatch{p: p, b: p.db.NewBatch()}
}

// PutMessage stores m (whose ID is already assigned) in conv, with the
// partner keys of a one-to-one conversation; ErrInvalid for a bad name.
func (r *ReplicaBatch) PutMessage(conv Conv, m Message) error {
	if !conv.valid() || !ValidName(m.From) || m.ID == 0 {
		return ErrInvalid
	}
	_ = r.b.Set(messageKey(conv, m.ID), encodeMessage(&m), nil)
	if !conv.IsGroup() {
		_ = r.b.Set(pairKey(tagPartner, conv.a, conv.b), nil, nil)
		_ = r.b.Set(pairKey(tagPartner, conv.b, conv.a), nil, nil)
	}
	return nil
}

// SetMember makes user a member of group or not; ErrInvalid for a bad
// name.
func (r *ReplicaBatch) SetMember(group, user string, member bool) error {
	if !ValidName(group) || !ValidName(user) {
		return ErrInvalid
	}
	mk, uk := pairKey(tagMember, group, user), pairKey(tagUser, user, group)
	if member {
		_ = r.b.Set(mk, nil, nil)
		return r.b.Set(uk, nil, nil)
	}
	_ = r.b.Delete(mk, nil)
	return r.b.Delete(uk, nil)
}

// SetApplied records pos as the position of the replication source name
// (read back with Pebble.Applied).
func (r *ReplicaBatch) SetApplied(name string, pos uint64) {
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], pos)
	_ = r.b.Set(appliedKey(name), v[:], nil)
}

// Commit applies the batch atomically, without waiting for an fsync (an
// index can be rebuilt from its source; a crash loses a suffix of the
// batches, data and positions together). The batch cannot be used again.
func (r *ReplicaBatch) Commit() error {
	defer r.b.Close()
	return r.p.read(func() error {
		if err := r.p.apply(r.b, pebble.NoSync); err != nil {
			return fmt.Errorf("store commit: %w", err)
		}
		return nil
	})
}

// Discard drops an uncommitted batch.
func (r *ReplicaBatch) Discard() { _ = r.b.Close() }

// Applied is the position last recorded for the replication source name
// (0 if none).
func (p *Pebble) Applied(name string) (uint64, error) {
	var pos uint64
	err := p.read(func() error {
		v, closer, err := p.db.Get(appliedKey(name))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		defer closer.Close()
		if len(v) != 8 {
			return errCorrupt
		}
		pos = binary.BigEndian.Uint64(v)
		return nil
	})
	return pos, err
}

// Wipe deletes everything (messages, memberships, positions), durably:
// the index starts again from nothing.
func (p *Pebble) Wipe() error {
	return p.read(func() error {
		b := p.db.NewBatch()
		defer b.Close()
		_ = b.DeleteRange([]byte{}, []byte{0xff}, nil)
		return p.apply(b, pebble.Sync)
	})
}
