package wsc

import (
	"context"

	"github.com/panjf2000/gnet/v2"
)

// Loop is one gnet event loop and the scratch state its connections share.
// Fields other than User are private to the loop goroutine.
type Loop struct {
	el  gnet.EventLoop
	idx int
	rng uint64 // xorshift state for frame masks
	buf []byte // frame scratch

	// User is per-loop state owned by the caller (set in Config.NewLoop);
	// touch it on the loop only (Run/Do).
	User any
}

// Index is the loop's number, from 0, in order of first use.
func (l *Loop) Index() int { return l.idx }

// Run queues fn to run on the loop. Any goroutine.
func (l *Loop) Run(fn func()) error {
	return l.el.Execute(context.Background(), gnet.RunnableFunc(func(context.Context) error {
		fn()
		return nil
	}))
}

// Do runs fn on the loop and waits for it. Any goroutine except the loop's.
func (l *Loop) Do(fn func()) error {
	done := make(chan struct{})
	if err := l.Run(func() { fn(); close(done) }); err != nil {
		return err
	}
	<-done
	return nil
}

// Rand returns a pseudo-random number. Event loop only.
func (l *Loop) Rand() uint64 {
	x := l.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	l.rng = x
	return x
}

func (l *Loop) mask() [4]byte {
	r := l.Rand()
	return [4]byte{byte(r), byte(r >> 8), byte(r >> 16), byte(r >> 24)}
}
