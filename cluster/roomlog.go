package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"partyline/backplane"
)

// A RoomLog sequences the traffic of a dialect's rooms across nodes: a
// JetStream stream with one subject per room incarnation
// (<prefix>.<room id>), whose stream sequence is the room's seq. Every
// node with members in a room follows the room's subject with an ordered
// consumer and delivers what it reads, in stream order, to its members:
// every node sees one order, and any node can rebuild a room's recent
// history from the stream (docs/cluster.md, "Party recovery across nodes").
//
//   - Append queues an entry for publication by one goroutine (so one
//     node's entries keep their order) with an asynchronous publish; a full
//     queue or a failed publish is counted (Dropped) and reported to the
//     OnLost callback, never silent.
//   - AppendSync publishes and waits for the stream's acknowledgement (a
//     worker calls it, never an event loop).
//   - Follow starts a room's consumer at the first entry the stream keeps
//     for it; Follower.Wait blocks until the consumer has delivered a seq.
//
// The stream keeps at most PerRoom entries per room and nothing older than
// MaxAge: a room's retained history is what its nodes can recover.

// LogEntry is one entry of a room's log.
type LogEntry = backplane.LogEntry

// Header names of log entries.
const (
	hdrLogEv   = "Pl-Ev"
	hdrLogFrom = "Pl-From"
	hdrLogTo   = "Pl-To"
	hdrLogRev  = "Pl-Rev"
)

// RoomLogConfig configures a RoomLog.
type RoomLogConfig = backplane.RoomLogConfig

// RoomLog is one dialect's room log. Safe from any goroutine.
type RoomLog struct {
	n      *Node
	cfg    RoomLogConfig
	js     jetstream.JetStream // with the async-publish error handler
	stream jetstream.Stream

	q       chan logItem
	done    chan struct{}
	once    sync.Once
	dropped atomic.Int64

	// OnLost is called (on a NATS or publisher goroutine) with an entry
	// that could not be published: the dialect tells its sender. Set
	// before Start.
	OnLost func(room string, e LogEntry, reason string)
}

type logItem struct {
	room   string
	e      LogEntry
	stored func(seq uint64) // AppendThen's
}

// RoomLog registers a room log with the node; the stream is created (or
// updated) at Start. Call before Start.
func (n *Node) RoomLog(cfg RoomLogConfig) *RoomLog {
	if cfg.PerRoom < 2 {
		cfg.PerRoom = 2
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if cfg.Queue <= 0 {
		cfg.Queue = 1 << 16
	}
	l := &RoomLog{n: n, cfg: cfg, q: make(chan logItem, cfg.Queue), done: make(chan struct{})}
	n.mu.Lock()
	n.logs = append(n.logs, l)
	n.mu.Unlock()
	return l
}

// start creates the stream and the publisher. Node.start calls it.
func (l *RoomLog) start(ctx context.Context) error {
	js, err := jetstream.New(l.n.nc,
		jetstream.WithPublishAsyncMaxPending(4096),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, m *nats.Msg, err error) {
			l.lost(m, "publish: "+err.Error())
		}))
	if err != nil {
		return err
	}
	l.js = js
	l.stream, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:              l.cfg.Stream,
		Description:       "partyline room logs: one subject per room, its recent frames",
		Subjects:          []string{l.cfg.Prefix + ".>"},
		MaxMsgsPerSubject: l.cfg.PerRoom,
		MaxAge:            l.cfg.MaxAge,
		Storage:           jetstream.FileStorage,
		Discard:           jetstream.DiscardOld,
	})
	if err != nil {
		return fmt.Errorf("cluster: room log stream %s: %w", l.cfg.Stream, err)
	}
	go l.run()
	return nil
}

func (l *RoomLog) subject(room string) string { return l.cfg.Prefix + "." + room }

func (l *RoomLog) msg(room string, e LogEntry) *nats.Msg {
	m := &nats.Msg{Subject: l.subject(room), Header: nats.Header{HdrOrigin: {l.n.id}}, Data: e.Data}
	if e.Ev != "" {
		m.Header.Set(hdrLogEv, e.Ev)
	}
	if e.From != "" {
		m.Header.Set(hdrLogFrom, e.From)
	}
	if e.To != "" {
		m.Header.Set(hdrLogTo, e.To)
	}
	if e.Rev != 0 {
		m.Header.Set(hdrLogRev, strconv.FormatUint(e.Rev, 10))
	}
	return m
}

// Append queues e (its Data is handed over: the caller must not reuse
// it) for the room's log. Never blocks; false when the queue is full (the
// entry is dropped, counted, and OnLost is not called: the caller knows).
func (l *RoomLog) Append(room string, e LogEntry) bool {
	return l.AppendThen(room, e, nil)
}

// AppendThen is Append with stored, called (on a goroutine of its own)
// with the entry's seq once the stream has it.
func (l *RoomLog) AppendThen(room string, e LogEntry, stored func(seq uint64)) bool {
	if l.n.stopped.Load() {
		l.dropped.Add(1)
		return false
	}
	select {
	case l.q <- logItem{room: room, e: e, stored: stored}:
		return true
	default:
		l.dropped.Add(1)
		return false
	}
}

func (l *RoomLog) run() {
	defer close(l.done)
	for it := range l.q {
		if it.room == "" { // stop's sentinel
			return
		}
		m := l.msg(it.room, it.e)
		paf, err := l.js.PublishMsgAsync(m, jetstream.WithStallWait(5*time.Second))
		if err != nil {
			l.lost(m, "publish: "+err.Error())
			continue
		}
		if it.stored != nil {
			go func() {
				select {
				case ack := <-paf.Ok():
					it.stored(ack.Sequence)
				case <-paf.Err(): // the error handler has counted it
				}
			}()
		}
	}
}

// lost counts an entry that did not reach the stream and tells the dialect.
func (l *RoomLog) lost(m *nats.Msg, reason string) {
	l.dropped.Add(1)
	if l.OnLost == nil || len(m.Subject) <= len(l.cfg.Prefix)+1 {
		return
	}
	room := m.Subject[len(l.cfg.Prefix)+1:]
	l.OnLost(room, entryOf(m.Header, m.Data), reason)
}

// stop publishes what is queued, waits (a few seconds at most) for the
// acknowledgements, and ends the publisher.
func (l *RoomLog) stop() {
	l.once.Do(func() {
		if l.js == nil {
			return
		}
		l.q <- logItem{}
		<-l.done
		select {
		case <-l.js.PublishAsyncComplete():
		case <-time.After(3 * time.Second):
		}
	})
}

// Dropped is the number of entries that never reached the stream.
func (l *RoomLog) Dropped() int64 { return l.dropped.Load() }

// AppendSync publishes e and returns its seq once the stream has it.
// Blocks (a worker).
func (l *RoomLog) AppendSync(room string, e LogEntry) (uint64, error) {
	ctx, cancel := l.n.Ctx()
	defer cancel()
	ack, err := l.js.PublishMsg(ctx, l.msg(room, e))
	if err != nil {
		return 0, err
	}
	return ack.Sequence, nil
}

// Last returns the seq of the room's latest entry (0: none). Blocks.
func (l *RoomLog) Last(room string) (uint64, error) {
	ctx, cancel := l.n.Ctx()
	defer cancel()
	m, err := l.stream.GetLastMsgForSubject(ctx, l.subject(room))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	return m.Sequence, nil
}

// Purge deletes the room's log (the room is gone). Blocks.
func (l *RoomLog) Purge(room string) error {
	ctx, cancel := l.n.Ctx()
	defer cancel()
	return l.stream.Purge(ctx, jetstream.WithPurgeSubject(l.subject(room)))
}

func entryOf(h nats.Header, data []byte) LogEntry {
	e := LogEntry{Ev: h.Get(hdrLogEv), From: h.Get(hdrLogFrom), To: h.Get(hdrLogTo), Data: data, Node: h.Get(HdrOrigin)}
	if v := h.Get(hdrLogRev); v != "" {
		e.Rev, _ = strconv.ParseUint(v, 10, 64)
	}
	return e
}

// Follower is one node's consumer of one room's log.
type Follower struct {
	it jetstream.MessagesContext

	mu      sync.Mutex
	seq     uint64 // the latest delivered
	waiters []waiter
	stopped bool
}

type waiter struct {
	seq uint64
	ch  chan struct{}
}

// Follow starts delivering the room's log to fn, from the first entry the
// stream keeps, in order, on a goroutine of the follower's own; fn must
// not block. It returns once the consumer exists, with the seq of the room's
// latest entry at that moment (wait for it to be caught up). Blocks.
func (l *RoomLog) Follow(room string, fn func(LogEntry)) (*Follower, uint64, error) {
	last, err := l.Last(room)
	if err != nil {
		return nil, 0, err
	}
	ctx, cancel := l.n.Ctx()
	defer cancel()
	cons, err := l.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{l.subject(room)},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return nil, 0, err
	}
	// One goroutine calls Next: entries reach fn one at a time, in
	// stream order, across the consumer's resets (Consume's callback may
	// overlap itself when the ordered consumer resets).
	it, err := cons.Messages()
	if err != nil {
		return nil, 0, err
	}
	f := &Follower{it: it}
	go func() {
		for {
			m, err := it.Next()
			if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
				f.stop()
				return
			}
			if err != nil {
				l.n.log.Warn("cluster: room log follower", "room", room, "err", err)
				time.Sleep(100 * time.Millisecond)
				continue
			}
			meta, err := m.Metadata()
			if err != nil {
				continue
			}
			e := entryOf(m.Headers(), m.Data())
			e.Seq, e.At = meta.Sequence.Stream, meta.Timestamp.UnixNano()
			fn(e)
			f.delivered(e.Seq)
		}
	}()
	return f, last, nil
}

func (f *Follower) delivered(seq uint64) {
	f.mu.Lock()
	f.seq = seq
	kept := f.waiters[:0]
	for _, w := range f.waiters {
		if w.seq <= seq {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	f.waiters = kept
	f.mu.Unlock()
}

// Wait blocks until the follower has delivered seq (true), or d passes or
// it stops (false).
func (f *Follower) Wait(seq uint64, d time.Duration) bool {
	f.mu.Lock()
	if f.seq >= seq {
		f.mu.Unlock()
		return true
	}
	if f.stopped {
		f.mu.Unlock()
		return false
	}
	ch := make(chan struct{})
	f.waiters = append(f.waiters, waiter{seq: seq, ch: ch})
	f.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.seq >= seq
	case <-t.C:
		return false
	}
}

// Stop ends the consumer. Safe to call more than once; never blocks for
// long.
func (f *Follower) Stop() {
	if f.stop() {
		f.it.Stop()
	}
}

// stop marks the follower stopped and releases its waiters; false if it
// already was.
func (f *Follower) stop() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		return false
	}
	f.stopped = true
	for _, w := range f.waiters {
		close(w.ch)
	}
	f.waiters = nil
	return true
}
