package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// countingStream answers Info with the number of Info calls started so
// far as the last sequence, slowly.
type countingStream struct {
	jetstream.Stream // only Info is implemented
	started          atomic.Uint64
	inFlight         atomic.Int32
	overlap          atomic.Bool
}

func (s *countingStream) Info(ctx context.Context, _ ...jetstream.StreamInfoOpt) (*jetstream.StreamInfo, error) {
	if s.inFlight.Add(1) > 1 {
		s.overlap.Store(true)
	}
	defer s.inFlight.Add(-1)
	n := s.started.Add(1)
	time.Sleep(5 * time.Millisecond)
	return &jetstream.StreamInfo{State: jetstream.StreamState{LastSeq: n}}, nil
}

// Concurrent callers share requests, one at a time, and every caller gets
// the answer of a request that started after it called.
func TestLastSeqCoalesces(t *testing.T) {
	st := &countingStream{}
	l := &lastSeq{stream: st}
	const callers, rounds = 50, 10
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			for range rounds {
				before := st.started.Load()
				got, err := l.get(context.Background(), context.Background())
				if err != nil || got <= before {
					t.Errorf("got %d, %v; %d requests had started before the call", got, err, before)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := st.started.Load(); n > callers*rounds/4 {
		t.Errorf("%d requests for %d calls", n, callers*rounds)
	}
	if st.overlap.Load() {
		t.Error("two requests ran at once")
	}
	t.Logf("%d requests for %d calls", st.started.Load(), callers*rounds)
}
