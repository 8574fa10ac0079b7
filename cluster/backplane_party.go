package cluster

import (
	"context"

	"github.com/nats-io/nats.go/jetstream"

	"partyline/backplane"
)

// Cluster is the node as the party dialects see it: the NATS
// implementation of backplane.Cluster (Backplane's value, with the
// registry, the room logs and node membership).
func (n *Node) Cluster() backplane.Cluster { return plane{n} }

// OnNodeDead implements backplane.Cluster.
func (p plane) OnNodeDead(fn func(g backplane.Gone) error) {
	p.Node.OnNodeDead(func(g Gone) error { return fn(g) })
}

// Registry implements backplane.Cluster: the key-value bucket pl_<name>,
// one of those the node creates at Start (BucketParty).
func (p plane) Registry(name string) backplane.Registry {
	return registry{n: p.Node, bucket: "pl_" + name}
}

// RoomLog implements backplane.Cluster.
func (p plane) RoomLog(cfg backplane.RoomLogConfig) backplane.RoomLog {
	return roomLog{p.Node.RoomLog(cfg)}
}

// registry adapts a key-value bucket to backplane.Registry. The bucket is
// looked up at each call: it exists once the node started.
type registry struct {
	n      *Node
	bucket string
}

func (r registry) kv() jetstream.KeyValue { return r.n.KV(r.bucket) }

func (r registry) Get(ctx context.Context, key string) (backplane.Entry, error) {
	e, err := r.kv().Get(ctx, key)
	if err != nil {
		return backplane.Entry{}, seamErr(err)
	}
	return backplane.Entry{Value: e.Value(), Revision: e.Revision()}, nil
}

func (r registry) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	rev, err := r.kv().Create(ctx, key, value)
	return rev, seamErr(err)
}

func (r registry) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	rev, err := r.kv().Update(ctx, key, value, rev)
	return rev, seamErr(err)
}

func (r registry) Delete(ctx context.Context, key string, rev uint64) error {
	if rev == 0 {
		return seamErr(r.kv().Delete(ctx, key))
	}
	return seamErr(r.kv().Delete(ctx, key, jetstream.LastRevision(rev)))
}

func (r registry) Purge(ctx context.Context, key string) error {
	return seamErr(r.kv().Purge(ctx, key))
}

func (r registry) Keys(ctx context.Context, prefix string) ([]string, error) {
	return listKeys(ctx, r.kv(), prefix+"*")
}

// seamErr wraps a bucket's error so that errors.Is finds
// backplane.ErrConflict where Conflict holds and backplane.ErrNotFound
// where NotFound does; its text stays the bucket's.
func seamErr(err error) error {
	switch {
	case err == nil:
		return nil
	case Conflict(err):
		return kindErr{err, backplane.ErrConflict}
	case NotFound(err):
		return kindErr{err, backplane.ErrNotFound}
	}
	return err
}

type kindErr struct{ err, kind error }

func (e kindErr) Error() string   { return e.err.Error() }
func (e kindErr) Unwrap() []error { return []error{e.kind, e.err} }

// roomLog adapts a RoomLog to backplane.RoomLog.
type roomLog struct{ *RoomLog }

func (l roomLog) Follow(room string, fn func(LogEntry)) (backplane.Follower, uint64, error) {
	f, last, err := l.RoomLog.Follow(room, fn)
	if err != nil {
		return nil, 0, err
	}
	return f, last, nil
}

func (l roomLog) SetOnLost(fn func(room string, e LogEntry, reason string)) { l.OnLost = fn }

var (
	_ backplane.Cluster = plane{}
	_ backplane.Gone    = Gone{}
	_ error             = kindErr{}
)
