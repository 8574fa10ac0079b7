package cluster

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

var errTooManyConflicts = errors.New("cluster: too many concurrent updates, try again")

// backoff sleeps a little, more after each failed try, with jitter.
func backoff(try int) {
	d := time.Duration(1+min(try, 20)) * 200 * time.Microsecond
	time.Sleep(d + rand.N(d))
}

// context5 is a context for a longer maintenance walk (30 s).
func context5(n *Node) (context.Context, context.CancelFunc) {
	return context.WithTimeout(n.ctx, 30*time.Second)
}

// listKeys lists the keys of kv that match filter. The lister ends
// without an error when ctx does: then the keys listed before and ctx's
// error are returned.
func listKeys(ctx context.Context, kv jetstream.KeyValue, filter string) ([]string, error) {
	kl, err := kv.ListKeysFiltered(ctx, filter)
	if err != nil {
		return nil, err
	}
	var keys []string
	for k := range kl.Keys() {
		keys = append(keys, k)
	}
	_ = kl.Stop()
	return keys, ctx.Err()
}

// Names is a cluster-wide set of claimed names in one namespace (channel
// user names): a claim is a create-if-absent of <ns>.<scope>.<name> in the
// names bucket holding the claimer's Node.Member; a dead node's claims are
// released by the reaper.
type Names struct {
	n  *Node
	ns string
}

// Names returns the name set of namespace ns. Call before Start.
func (n *Node) Names(ns string) *Names {
	s := &Names{n: n, ns: ns}
	n.OnNodeDead(s.reap)
	return s
}

func (s *Names) key(scope, name string) string { return s.ns + "." + Token(scope) + "." + Token(name) }

// Claim takes name in scope for this node. It returns the claim's
// revision (for Release) and false if someone holds the name. Blocks.
func (s *Names) Claim(scope, name string) (uint64, bool, error) {
	ctx, cancel := s.n.Ctx()
	defer cancel()
	rev, err := s.n.buckets[BucketNames].Create(ctx, s.key(scope, name), []byte(s.n.Member()))
	if Conflict(err) {
		return 0, false, nil
	}
	return rev, err == nil, err
}

// Release gives up a claim made with revision rev (a claim taken over
// since is left alone). Blocks.
func (s *Names) Release(scope, name string, rev uint64) error {
	ctx, cancel := s.n.Ctx()
	defer cancel()
	err := s.n.buckets[BucketNames].Delete(ctx, s.key(scope, name), jetstream.LastRevision(rev))
	if Conflict(err) {
		return nil
	}
	return err
}

// reap releases the claims of the gone; it returns the first error that
// left one in place (a claim changed meanwhile is someone else's).
func (s *Names) reap(g Gone) error {
	ctx, cancel := context5(s.n)
	defer cancel()
	kv := s.n.buckets[BucketNames]
	keys, first := listKeys(ctx, kv, s.ns+".>")
	for _, k := range keys {
		e, err := kv.Get(ctx, k)
		if err == nil && g.Holds(string(e.Value())) {
			err = kv.Delete(ctx, k, jetstream.LastRevision(e.Revision()))
		}
		if err != nil && !NotFound(err) && !Conflict(err) && first == nil {
			first = err
		}
	}
	return first
}
