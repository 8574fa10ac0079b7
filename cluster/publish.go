package cluster

import (
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"partyline/routing"
)

// pubItem is one queued publication: a frame (with a reference held by
// the queue) or raw bytes.
type pubItem struct {
	subject string
	f       *routing.Frame
	data    []byte
	hdr     nats.Header
}

// publisher hands publications from event loops to one goroutine that
// calls NATS: an event loop never waits on the NATS connection. The queue
// is bounded; when it is full (NATS far behind or away for long) the
// publication is dropped and counted.
type publisher struct {
	n       *Node
	q       chan pubItem
	dropped atomic.Int64
	sent    atomic.Int64
	done    chan struct{}
	once    sync.Once
}

func newPublisher(n *Node, size int) *publisher {
	return &publisher{n: n, q: make(chan pubItem, size), done: make(chan struct{})}
}

func (p *publisher) start() { go p.run() }

// frame queues f (taking a reference) for subject.
func (p *publisher) frame(subject string, f *routing.Frame, droppable bool, hdr nats.Header) {
	if hdr == nil {
		hdr = p.n.hdrOrigin
		if droppable {
			hdr = p.n.hdrDrop
		}
	} else {
		hdr.Set(HdrOrigin, p.n.id)
		if droppable {
			hdr.Set(HdrDrop, "1")
		}
	}
	f.Retain()
	select {
	case p.q <- pubItem{subject: subject, f: f, hdr: hdr}:
	default:
		f.Release()
		p.dropped.Add(1)
	}
}

// raw queues data (not copied: the caller gives it up) for subject.
func (p *publisher) raw(subject string, data []byte, hdr nats.Header) {
	hdr.Set(HdrOrigin, p.n.id)
	select {
	case p.q <- pubItem{subject: subject, data: data, hdr: hdr}:
	default:
		p.dropped.Add(1)
	}
}

func (p *publisher) run() {
	defer close(p.done)
	m := &nats.Msg{}
	for it := range p.q {
		if it.subject == "" { // stop's sentinel
			return
		}
		m.Subject, m.Header = it.subject, it.hdr
		if it.f != nil {
			m.Data = it.f.Bytes()
		} else {
			m.Data = it.data
		}
		err := p.n.nc.PublishMsg(m) // copies Data into the connection's buffer
		if it.f != nil {
			it.f.Release()
		}
		if err != nil {
			p.dropped.Add(1)
		} else {
			p.sent.Add(1)
		}
	}
}

// stop publishes what is queued and ends the goroutine. Publications
// queued after stop are never sent (the queue is not closed, so a late
// publisher cannot panic).
func (p *publisher) stop() {
	p.once.Do(func() {
		p.q <- pubItem{}
		<-p.done
	})
}
