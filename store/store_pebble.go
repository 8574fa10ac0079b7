package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// PebbleOptions configures OpenPebble.
type PebbleOptions struct {
	Logger   *slog.Logger     // Pebble's own log lines go here at debug level
	Queue    int              // pending writes before Append blocks (default 4096)
	MaxBatch int              // writes per group commit at most (default 1024)
	Now      func() time.Time // clock for message IDs (default time.Now)
}

// Pebble is the embedded durable Store on github.com/cockroachdb/pebble.
// Reads go straight to the database; writes go through one writer
// goroutine that takes every write pending at once, applies them as one
// batch and commits it with a single fsync (pebble.Sync), then wakes the
// waiting callers.
type Pebble struct {
	db    *pebble.DB
	now   func() time.Time
	ops   chan *op
	max   int
	wdone chan struct{} // closed when the writer has exited

	mu     sync.RWMutex // guards closed; held for reading by every call
	closed bool

	closeOnce sync.Once
	closeErr  error

	lastID  ID // writer only
	batches atomic.Int64
	writes  atomic.Int64
}

type opKind uint8

const (
	opAppend opKind = iota
	opJoin
	opLeave
)

// op is one pending write; done is closed once it is durable or failed.
type op struct {
	kind        opKind
	conv        Conv
	msg         Message
	group, user string
	err         error
	done        chan struct{}
}

// OpenPebble opens (creating if needed) the store in dir.
func OpenPebble(dir string, o PebbleOptions) (*Pebble, error) {
	if o.Queue <= 0 {
		o.Queue = 4096
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = 1024
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: pebbleLogger{o.Logger}})
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	p := &Pebble{db: db, now: o.Now, ops: make(chan *op, o.Queue), max: o.MaxBatch, wdone: make(chan struct{})}
	v, closer, err := db.Get(keyLastID)
	switch {
	case err == nil:
		if len(v) == 8 {
			p.lastID = idFromKey(v) // stored inverted like keys
		}
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", dir, err)
	}
	go p.writer()
	return p, nil
}

// Stats reports how many group commits ran and how many writes they held.
func (p *Pebble) Stats() (batches, writes int64) { return p.batches.Load(), p.writes.Load() }

// submit queues o for the writer and waits until it is durable.
func (p *Pebble) submit(o *op) error {
	o.done = make(chan struct{})
	p.mu.RLock()
	if p.closed {
		p.mu.RUnlock()
		return ErrClosed
	}
	p.ops <- o // the writer keeps draining, so Close waits at most one batch
	p.mu.RUnlock()
	<-o.done
	return o.err
}

func (p *Pebble) Append(conv Conv, m Message) (Message, error) {
	if !conv.valid() || !ValidName(m.From) {
		return m, ErrInvalid
	}
	o := &op{kind: opAppend, conv: conv, msg: m}
	err := p.submit(o)
	return o.msg, err
}

func (p *Pebble) Join(group, user string) error {
	if !ValidName(group) || !ValidName(user) {
		return ErrInvalid
	}
	return p.submit(&op{kind: opJoin, group: group, user: user})
}

func (p *Pebble) Leave(group, user string) error {
	if !ValidName(group) || !ValidName(user) {
		return ErrInvalid
	}
	return p.submit(&op{kind: opLeave, group: group, user: user})
}

// writer is the single goroutine that applies writes, in arrival order.
func (p *Pebble) writer() {
	defer close(p.wdone)
	batch := make([]*op, 0, p.max)
	for first := range p.ops {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < p.max {
			select {
			case o, ok := <-p.ops:
				if !ok {
					break fill
				}
				batch = append(batch, o)
			default:
				break fill
			}
		}
		p.commit(batch)
		clear(batch)
	}
}

// commit applies ops as one batch with one fsync and releases the callers.
func (p *Pebble) commit(ops []*op) {
	indexed := false
	for _, o := range ops {
		indexed = indexed || o.kind != opAppend
	}
	var b *pebble.Batch
	if indexed { // membership checks must see earlier writes of this batch
		b = p.db.NewIndexedBatch()
	} else {
		b = p.db.NewBatch()
	}
	appended := false
	for _, o := range ops {
		switch o.kind {
		case opAppend:
			p.lastID = nextID(p.lastID, p.now())
			o.msg.ID = p.lastID
			_ = b.Set(messageKey(o.conv, o.msg.ID), encodeMessage(&o.msg), nil)
			if !o.conv.IsGroup() {
				_ = b.Set(pairKey(tagPartner, o.conv.a, o.conv.b), nil, nil)
				_ = b.Set(pairKey(tagPartner, o.conv.b, o.conv.a), nil, nil)
			}
			appended = true
		case opJoin, opLeave:
			o.err = p.applyMembership(b, o)
		}
	}
	if appended {
		var v [8]byte
		putID(v[:], ^p.lastID)
		_ = b.Set(keyLastID, v[:], nil)
	}
	err := b.Commit(pebble.Sync)
	_ = b.Close()
	p.batches.Add(1)
	p.writes.Add(int64(len(ops)))
	for _, o := range ops {
		if err != nil && o.err == nil {
			o.err = fmt.Errorf("store commit: %w", err)
		}
		close(o.done)
	}
}

func (p *Pebble) applyMembership(b *pebble.Batch, o *op) error {
	mk := pairKey(tagMember, o.group, o.user)
	_, closer, err := b.Get(mk)
	switch {
	case err == nil:
		closer.Close()
	case !errors.Is(err, pebble.ErrNotFound):
		return err
	}
	member := err == nil
	if o.kind == opJoin {
		if member {
			return ErrAlreadyMember
		}
		_ = b.Set(mk, nil, nil)
		return b.Set(pairKey(tagUser, o.user, o.group), nil, nil)
	}
	if !member {
		return ErrNotMember
	}
	_ = b.Delete(mk, nil)
	return b.Delete(pairKey(tagUser, o.user, o.group), nil)
}

// read runs fn unless the store is closed.
func (p *Pebble) read(fn func() error) error {
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed {
		return ErrClosed
	}
	return fn()
}

func (p *Pebble) History(conv Conv, before ID, limit, maxBytes int) (Page, error) {
	var pg Page
	if !conv.valid() {
		return pg, ErrInvalid
	}
	err := p.read(func() error {
		prefix := historyPrefix(conv)
		it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
		if err != nil {
			return err
		}
		defer it.Close()
		if before != 0 {
			k := messageKey(conv, before)
			if !it.SeekGE(k) || !bytes.Equal(it.Key(), k) {
				return ErrUnknownMessage
			}
			it.Next()
		} else {
			it.First()
		}
		size := 0
		for ; it.Valid(); it.Next() {
			if len(pg.Messages) == limit || (maxBytes > 0 && size > 0 && size+len(it.Value()) > maxBytes) {
				pg.HasMore = true
				break
			}
			m := Message{ID: idFromKey(it.Key())}
			if err := decodeMessage(it.Value(), &m); err != nil {
				return err
			}
			size += len(it.Value())
			pg.Messages = append(pg.Messages, m)
		}
		if err := it.Error(); err != nil {
			return err
		}
		slices.Reverse(pg.Messages)
		return nil
	})
	return pg, err
}

func (p *Pebble) IsMember(group, user string) (bool, error) {
	var ok bool
	err := p.read(func() error {
		_, closer, err := p.db.Get(pairKey(tagMember, group, user))
		if errors.Is(err, pebble.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		ok = true
		return closer.Close()
	})
	return ok, err
}

// scanNames lists the final names of the keys under namePrefix(tag, x).
func (p *Pebble) scanNames(tag byte, x string, fn func(string)) error {
	prefix := namePrefix(tag, x)
	it, err := p.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		return err
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if name, ok := lastName(it.Key(), len(prefix)); ok {
			fn(name)
		}
	}
	return it.Error()
}

func (p *Pebble) Members(group string) ([]string, error) {
	var out []string
	err := p.read(func() error {
		return p.scanNames(tagMember, group, func(u string) { out = append(out, u) })
	})
	slices.Sort(out) // keys are length-prefixed: they scan shortest first
	return out, err
}

func (p *Pebble) Contacts(user string) ([]string, error) {
	set := map[string]struct{}{}
	err := p.read(func() error {
		var groups []string
		if err := p.scanNames(tagUser, user, func(g string) { groups = append(groups, g) }); err != nil {
			return err
		}
		for _, g := range groups {
			if err := p.scanNames(tagMember, g, func(u string) { set[u] = struct{}{} }); err != nil {
				return err
			}
		}
		return p.scanNames(tagPartner, user, func(u string) { set[u] = struct{}{} })
	})
	delete(set, user)
	out := make([]string, 0, len(set))
	for u := range set {
		out = append(out, u)
	}
	slices.Sort(out)
	return out, err
}

// Close stops new calls, lets the writer finish every queued write, then
// flushes the memtable and closes the database.
func (p *Pebble) Close() error {
	p.closeOnce.Do(func() {
		p.mu.Lock()
		p.closed = true
		close(p.ops)
		p.mu.Unlock()
		<-p.wdone
		if err := p.db.Flush(); err != nil {
			p.closeErr = err
		}
		if err := p.db.Close(); err != nil && p.closeErr == nil {
			p.closeErr = err
		}
	})
	return p.closeErr
}

// pebbleLogger sends Pebble's log lines to slog at debug level (errors at
// error level).
type pebbleLogger struct{ l *slog.Logger }

func (g pebbleLogger) Infof(f string, a ...any)  { g.l.Debug("pebble: " + fmt.Sprintf(f, a...)) }
func (g pebbleLogger) Errorf(f string, a ...any) { g.l.Error("pebble: " + fmt.Sprintf(f, a...)) }
func (g pebbleLogger) Fatalf(f string, a ...any) {
	g.l.Error("pebble: " + fmt.Sprintf(f, a...))
	panic(fmt.Sprintf(f, a...))
}
