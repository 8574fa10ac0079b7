package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"partyline/store"
)

// Names of the chat store in JetStream.
const (
	// StreamChat holds every chat message, one subject per conversation:
	// pl.chat.g.<Token(group)> and pl.chat.d.<Token(a)>.<Token(b)> (a <= b).
	StreamChat = "PL_CHAT"
	// BucketGroups holds group membership: the key <Token(group)>.<Token(user)>
	// exists while user is a member of group.
	BucketGroups = "pl_groups"

	chatPrefix   = "pl.chat."
	groupsStream = "KV_" + BucketGroups        // the bucket's stream
	groupsPrefix = "$KV." + BucketGroups + "." // its subjects: the prefix, then the key
	kvOpHeader   = "KV-Operation"              // on a KV delete or purge marker
	indexDir     = "chat-index"                // the read index, under the data dir
)

// ErrChatBehind is returned by a ChatStore read when the local index did
// not catch up with JetStream in time (see ChatStore).
var ErrChatBehind = errors.New("cluster: chat index did not catch up with JetStream in time")

// Timeouts of the chat store.
const (
	chatPublishWait = 8 * time.Second // Append: all tries of one publish
	chatTryWait     = 2 * time.Second // Append: one try
	chatOpWait      = 5 * time.Second // Join, Leave: one KV call; Open
	chatReadWait    = 5 * time.Second // reads: the barrier
	chatApplyMax    = 1024            // replicated writes per index batch
)

// ChatStore is the cluster's store.Store: JetStream is the source of
// truth, every node reads from a local index fed by it.
//
//   - Append publishes the message on StreamChat with a Nats-Msg-Id (the
//     same on every retry, so a retried publish is deduplicated) and
//     returns after the PubAck: the message is then durable in JetStream.
//     Its ID is store.MakeID(the publisher's clock in ms, the stream
//     sequence's low 16 bits), so every node computes the same ID.
//   - Join and Leave are a create and a revision-checked delete in
//     BucketGroups.
//   - Reads are served by a Pebble index in <dir>/chat-index, fed by
//     ordered consumers of StreamChat and of BucketGroups' stream whose
//     messages one goroutine applies in batches (no fsync: the index can
//     be rebuilt), each batch recording the stream positions it reached
//     together with the data. On reopen the index resumes after those
//     positions; an empty directory is rebuilt from JetStream, and so is
//     an index ahead of JetStream (streams deleted and recreated).
//   - Before a read, a barrier asks JetStream for the last sequence of
//     the streams the read depends on and waits (chatReadWait at most,
//     then ErrChatBehind) until the index has applied that far, so a read
//     sees every write acknowledged anywhere before it started.
//     Concurrent readers share one stream-info request.
//
// Concurrency: every method is safe for concurrent use and blocks on the
// caller's goroutine (network and disk): call from a worker pool, never
// from an event loop.
type ChatStore struct {
	n   *Node
	log *slog.Logger
	idx *store.Pebble
	now func() time.Time
	kv  jetstream.KeyValue

	chatLast, groupsLast *lastSeq // stream-info requests, coalesced

	ctx    context.Context // cancelled by Close (and by the node's Stop)
	cancel context.CancelFunc
	ccs    []jetstream.ConsumeContext
	feed   chan jetstream.Msg // from the consumers to the applier
	done   chan struct{}      // closed when the applier has exited

	// Applied positions: written by the applier only, after each batch.
	chatApplied, groupsApplied atomic.Uint64
	pmu                        sync.Mutex    // guards progress
	progress                   chan struct{} // closed (and replaced) after each batch

	lastMs atomic.Int64 // the last publish clock (kept monotonic)

	closeOnce sync.Once
	closeErr  error
}

// OpenChatStore opens the chat store of this node, with its read index in
// dir (the subdirectory chat-index: a standalone store.Pebble in dir is
// left alone). Call after Start; blocks until the stream, the bucket and
// the feeds are set up (not until the index has caught up: reads wait
// for that).
func (n *Node) OpenChatStore(dir string, opts store.PebbleOptions) (*ChatStore, error) {
	if n.js == nil || n.stopped.Load() {
		return nil, errors.New("cluster: OpenChatStore needs a started node")
	}
	if opts.Logger == nil {
		opts.Logger = n.log
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ctx, cancel := context.WithTimeout(n.ctx, chatOpWait)
	defer cancel()
	chat, err := n.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        StreamChat,
		Description: "partyline chat history",
		Subjects:    []string{chatPrefix + ">"},
		Storage:     jetstream.FileStorage,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: chat stream %s: %w", StreamChat, err)
	}
	kv, err := n.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: BucketGroups, Description: "partyline group membership", Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: key-value bucket %s: %w", BucketGroups, err)
	}
	groups, err := n.js.Stream(ctx, groupsStream)
	if err != nil {
		return nil, fmt.Errorf("cluster: key-value bucket %s: %w", BucketGroups, err)
	}
	idx, err := store.OpenPebble(filepath.Join(dir, indexDir), opts)
	if err != nil {
		return nil, err
	}
	s := &ChatStore{n: n, log: opts.Logger, idx: idx, now: opts.Now, kv: kv,
		chatLast: &lastSeq{stream: chat}, groupsLast: &lastSeq{stream: groups},
		feed: make(chan jetstream.Msg, chatApplyMax), done: make(chan struct{}), progress: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(n.ctx)
	if err := s.start(ctx, chat, groups); err != nil {
		s.cancel()
		for _, cc := range s.ccs {
			cc.Stop()
		}
		_ = idx.Close()
		return nil, err
	}
	go s.apply()
	return s, nil
}

// start loads the applied positions (wiping the index if JetStream is
// behind them: the streams were recreated) and starts the feeds.
func (s *ChatStore) start(ctx context.Context, chat, groups jetstream.Stream) error {
	var pos [2]uint64
	for i, st := range []jetstream.Stream{chat, groups} {
		info, err := st.Info(ctx)
		if err != nil {
			return fmt.Errorf("cluster: chat store: %w", err)
		}
		applied, err := s.idx.Applied(info.Config.Name)
		if err != nil {
			return err
		}
		if info.State.LastSeq < applied {
			s.log.Warn("cluster: chat index is ahead of JetStream (streams recreated?): rebuilding it",
				"stream", info.Config.Name, "applied", applied, "last", info.State.LastSeq)
			if err := s.idx.Wipe(); err != nil {
				return err
			}
			pos = [2]uint64{}
			break
		}
		pos[i] = applied
	}
	s.chatApplied.Store(pos[0])
	s.groupsApplied.Store(pos[1])

	for i, st := range []jetstream.Stream{chat, groups} {
		if err := s.follow(ctx, st, pos[i]); err != nil {
			return err
		}
	}
	return nil
}

// follow feeds the applier every message of st after sequence applied,
// in order, through an ordered consumer (which recreates itself after a
// reconnect or a gap).
//
// The membership bucket is followed like this rather than with a KV
// watcher: a watcher's push consumer recovers from a NATS server restart
// only after its heartbeats go missing (about 20 s), the pull consumer at
// once.
func (s *ChatStore) follow(ctx context.Context, st jetstream.Stream, applied uint64) error {
	name := st.CachedInfo().Config.Name
	occ := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	if applied > 0 {
		occ = jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: applied + 1}
	}
	cons, err := st.OrderedConsumer(ctx, occ)
	if err != nil {
		return fmt.Errorf("cluster: consumer of %s: %w", name, err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) {
		select {
		case s.feed <- m:
		case <-s.ctx.Done():
		}
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if s.ctx.Err() == nil {
			s.log.Warn("cluster: chat store consumer", "stream", name, "err", err)
		}
	}))
	if err != nil {
		return fmt.Errorf("cluster: consumer of %s: %w", name, err)
	}
	s.ccs = append(s.ccs, cc)
	return nil
}

// chatSubject is conv's subject in StreamChat.
func chatSubject(conv store.Conv) string {
	g, a, b := conv.Parts()
	if conv.IsGroup() {
		return chatPrefix + "g." + Token(g)
	}
	return chatPrefix + "d." + Token(a) + "." + Token(b)
}

// parseChatSubject reverses chatSubject.
func parseChatSubject(subj string) (store.Conv, bool) {
	rest, ok := strings.CutPrefix(subj, chatPrefix)
	if !ok {
		return store.Conv{}, false
	}
	kind, rest, _ := strings.Cut(rest, ".")
	switch kind {
	case "g":
		g, ok := Untoken(rest)
		return store.Group(g), ok
	case "d":
		a, b, ok := untoken2(rest)
		return store.Direct(a, b), ok
	}
	return store.Conv{}, false
}

// memberKey is the key of user's membership of group in BucketGroups.
func memberKey(group, user string) string { return Token(group) + "." + Token(user) }

// untoken2 reverses Token(x) + "." + Token(y).
func untoken2(s string) (x, y string, ok bool) {
	tx, ty, found := strings.Cut(s, ".")
	x, okx := Untoken(tx)
	y, oky := Untoken(ty)
	return x, y, found && okx && oky
}

// A chat message in StreamChat is the publisher's clock (Unix ms, 8 bytes
// big-endian) then store.MarshalMessage.
func encodeChat(ms int64, m *store.Message) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(ms)), store.MarshalMessage(m)...)
}

func decodeChat(b []byte, seq uint64) (store.Message, error) {
	var m store.Message
	if len(b) < 8 {
		return m, errors.New("short chat message")
	}
	if err := store.UnmarshalMessage(b[8:], &m); err != nil {
		return m, err
	}
	m.ID = store.MakeID(int64(binary.BigEndian.Uint64(b)), uint16(seq))
	return m, nil
}

// clock is the publish time in Unix ms, never earlier than the last one.
func (s *ChatStore) clock() int64 {
	now := s.now().UnixMilli()
	for {
		last := s.lastMs.Load()
		if now <= last {
			return last
		}
		if s.lastMs.CompareAndSwap(last, now) {
			return now
		}
	}
}

// Append publishes m on conv's subject and returns it with its ID once
// JetStream has acknowledged it. A publish that times out or finds no
// responder is retried with the same message id for chatPublishWait.
func (s *ChatStore) Append(conv store.Conv, m store.Message) (store.Message, error) {
	if !conv.Valid() || !store.ValidName(m.From) {
		return m, store.ErrInvalid
	}
	if s.ctx.Err() != nil {
		return m, store.ErrClosed
	}
	ms := s.clock()
	msg := &nats.Msg{Subject: chatSubject(conv), Data: encodeChat(ms, &m)}
	id := nuid.Next()
	deadline := time.Now().Add(chatPublishWait)
	for try := 0; ; try++ {
		ctx, cancel := context.WithTimeout(s.ctx, min(time.Until(deadline), chatTryWait))
		ack, err := s.n.js.PublishMsg(ctx, msg, jetstream.WithMsgID(id), jetstream.WithExpectStream(StreamChat))
		cancel()
		if err == nil {
			m.ID = store.MakeID(ms, uint16(ack.Sequence))
			return m, nil
		}
		if s.ctx.Err() != nil {
			return m, store.ErrClosed
		}
		var apiErr *jetstream.APIError
		if errors.As(err, &apiErr) || errors.Is(err, nats.ErrConnectionClosed) || !time.Now().Before(deadline) {
			return m, fmt.Errorf("cluster: chat append: %w", err)
		}
		s.log.Debug("cluster: chat append: retrying", "try", try, "err", err)
		backoff(try)
	}
}

// Join creates user's membership key; ErrAlreadyMember if it exists.
func (s *ChatStore) Join(group, user string) error {
	if !store.ValidName(group) || !store.ValidName(user) {
		return store.ErrInvalid
	}
	ctx, cancel := context.WithTimeout(s.ctx, chatOpWait)
	defer cancel()
	// Create also succeeds over a delete marker (a member who left),
	// revision-checked against that marker.
	_, err := s.kv.Create(ctx, memberKey(group, user), nil)
	switch {
	case err == nil:
		return nil
	case casFailed(err):
		return store.ErrAlreadyMember
	case s.ctx.Err() != nil:
		return store.ErrClosed
	}
	return fmt.Errorf("cluster: join: %w", err)
}

// Leave deletes user's membership key, checked against the revision read
// (re-read on a conflict); ErrNotMember if there is none.
func (s *ChatStore) Leave(group, user string) error {
	if !store.ValidName(group) || !store.ValidName(user) {
		return store.ErrInvalid
	}
	key := memberKey(group, user)
	for try := 0; try < 100; try++ {
		ctx, cancel := context.WithTimeout(s.ctx, chatOpWait)
		e, err := s.kv.Get(ctx, key)
		if err == nil {
			err = s.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision()))
		}
		cancel()
		switch {
		case err == nil:
			return nil
		case NotFound(err):
			return store.ErrNotMember
		case s.ctx.Err() != nil:
			return store.ErrClosed
		case !casFailed(err):
			return fmt.Errorf("cluster: leave: %w", err)
		}
		backoff(try)
	}
	return errTooManyConflicts
}

// casFailed reports whether err is a failed revision check of a KV write.
func casFailed(err error) bool {
	if errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return true
	}
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && (apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// History returns a page of conv from the index, after the chat barrier.
func (s *ChatStore) History(conv store.Conv, before store.ID, limit, maxBytes int) (store.Page, error) {
	if !conv.Valid() {
		return store.Page{}, store.ErrInvalid
	}
	if err := s.barrier(true, false); err != nil {
		return store.Page{}, err
	}
	return s.idx.History(conv, before, limit, maxBytes)
}

// IsMember reads the index after the membership barrier.
func (s *ChatStore) IsMember(group, user string) (bool, error) {
	if !store.ValidName(group) || !store.ValidName(user) {
		return false, nil // no one is a member under an invalid name
	}
	if err := s.barrier(false, true); err != nil {
		return false, err
	}
	return s.idx.IsMember(group, user)
}

// Members reads the index after the membership barrier, in byte order.
func (s *ChatStore) Members(group string) ([]string, error) {
	if !store.ValidName(group) {
		return nil, nil
	}
	if err := s.barrier(false, true); err != nil {
		return nil, err
	}
	ms, err := s.idx.Members(group)
	slices.Sort(ms) // the index lists them by length first (names are length-prefixed)
	return ms, err
}

// Contacts reads the index after both barriers (groups and one-to-one
// partners).
func (s *ChatStore) Contacts(user string) ([]string, error) {
	if !store.ValidName(user) {
		return []string{}, nil
	}
	if err := s.barrier(true, true); err != nil {
		return nil, err
	}
	return s.idx.Contacts(user)
}

// barrier waits until the index has applied every message of StreamChat
// (chat) and of the groups bucket (groups) that JetStream holds now.
func (s *ChatStore) barrier(chat, groups bool) error {
	ctx, cancel := context.WithTimeout(s.ctx, chatReadWait)
	defer cancel()
	var wantChat, wantGroups uint64
	var err error
	if chat {
		if wantChat, err = s.chatLast.get(ctx, s.ctx); err != nil {
			return s.readErr(err)
		}
	}
	if groups {
		if wantGroups, err = s.groupsLast.get(ctx, s.ctx); err != nil {
			return s.readErr(err)
		}
	}
	for {
		s.pmu.Lock()
		progress := s.progress // before the positions: no missed wake-up
		s.pmu.Unlock()
		if s.chatApplied.Load() >= wantChat && s.groupsApplied.Load() >= wantGroups {
			return nil
		}
		select {
		case <-progress:
		case <-ctx.Done():
			return s.readErr(ErrChatBehind)
		}
	}
}

func (s *ChatStore) readErr(err error) error {
	if s.ctx.Err() != nil {
		return store.ErrClosed
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ErrChatBehind
	}
	return err
}

// apply is the index's single writer: it takes every message and
// membership change pending (up to chatApplyMax) and applies them as one
// batch with the positions they reach.
func (s *ChatStore) apply() {
	defer close(s.done)
	var batch []jetstream.Msg
	for {
		select {
		case <-s.ctx.Done():
			return
		case m := <-s.feed:
			batch = append(batch, m)
		}
	fill:
		for len(batch) < chatApplyMax {
			select {
			case m := <-s.feed:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		s.commit(batch)
		clear(batch)
		batch = batch[:0]
	}
}

// commit writes one batch, retrying a failed write until the store closes
// (a gap in the index would never be filled).
func (s *ChatStore) commit(batch []jetstream.Msg) {
	for {
		err := s.write(batch)
		if err == nil || s.ctx.Err() != nil {
			return
		}
		s.log.Error("cluster: chat index write failed, retrying", "err", err)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

func (s *ChatStore) write(batch []jetstream.Msg) error {
	chat0, groups0 := s.chatApplied.Load(), s.groupsApplied.Load()
	chat, groups := chat0, groups0
	b := s.idx.NewReplicaBatch()
	for _, m := range batch {
		md, err := m.Metadata()
		if err != nil {
			continue // not a stream message
		}
		seq := md.Sequence.Stream
		switch {
		case md.Stream == StreamChat && seq > chat:
			chat = seq
			err = putChat(b, m, seq)
		case md.Stream == groupsStream && seq > groups:
			groups = seq
			err = putMember(b, m)
		default:
			continue // seen already
		}
		if err != nil {
			s.log.Warn("cluster: chat index: skipping a bad message", "stream", md.Stream, "seq", seq, "subject", m.Subject(), "err", err)
		}
	}
	if chat == chat0 && groups == groups0 {
		b.Discard()
		return nil
	}
	if chat != chat0 {
		b.SetApplied(StreamChat, chat)
	}
	if groups != groups0 {
		b.SetApplied(groupsStream, groups)
	}
	if err := b.Commit(); err != nil {
		return err
	}
	s.chatApplied.Store(chat)
	s.groupsApplied.Store(groups)
	s.pmu.Lock()
	close(s.progress)
	s.progress = make(chan struct{})
	s.pmu.Unlock()
	return nil
}

// putChat adds message m of StreamChat, at sequence seq, to b.
func putChat(b *store.ReplicaBatch, m jetstream.Msg, seq uint64) error {
	conv, ok := parseChatSubject(m.Subject())
	msg, err := decodeChat(m.Data(), seq)
	switch {
	case err != nil:
		return err
	case !ok:
		return store.ErrInvalid
	}
	return b.PutMessage(conv, msg)
}

// putMember adds message m of the groups bucket's stream to b: a value
// is a membership, a delete or purge marker the end of one.
func putMember(b *store.ReplicaBatch, m jetstream.Msg) error {
	key, ok := strings.CutPrefix(m.Subject(), groupsPrefix)
	group, user, ok2 := untoken2(key)
	if !ok || !ok2 {
		return store.ErrInvalid
	}
	h := m.Headers()
	removed := h.Get(kvOpHeader) != "" || h.Get(jetstream.MarkerReasonHeader) != ""
	return b.SetMember(group, user, !removed)
}

// Close stops the feeds and closes the index; calls in flight fail with
// store.ErrClosed. Idempotent.
func (s *ChatStore) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		for _, cc := range s.ccs {
			cc.Stop()
		}
		<-s.done
		s.closeErr = s.idx.Close()
	})
	return s.closeErr
}

// lastSeq asks a stream for its last sequence, sharing requests between
// concurrent callers: a caller joins the next request to start (never one
// already under way, which might predate its call), so N concurrent
// callers cause at most two requests at a time, one running and one
// waiting. Each request runs on the goroutine of a caller that needs it.
type lastSeq struct {
	stream jetstream.Stream // Info is called by one request at a time

	mu      sync.Mutex
	running *seqCall // the request under way, if any
	next    *seqCall // the request to start after it, if any
}

type seqCall struct {
	done chan struct{}
	seq  uint64
	err  error
}

// get returns the stream's last sequence from a request that started
// after the call; ctx bounds the wait, base the request itself.
func (l *lastSeq) get(ctx, base context.Context) (uint64, error) {
	l.mu.Lock()
	var call, prev *seqCall
	switch {
	case l.running == nil:
		call = &seqCall{done: make(chan struct{})}
		l.running = call
	case l.next != nil:
		call = l.next
		l.mu.Unlock()
		select {
		case <-call.done:
			return call.seq, call.err
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	default:
		call = &seqCall{done: make(chan struct{})}
		l.next, prev = call, l.running
	}
	l.mu.Unlock()
	if prev != nil {
		<-prev.done // bounded by its own timeout; it hands over to call
	}
	rctx, cancel := context.WithTimeout(base, chatReadWait)
	info, err := l.stream.Info(rctx)
	cancel()
	if err == nil {
		call.seq = info.State.LastSeq
	}
	call.err = err
	l.mu.Lock()
	l.running, l.next = l.next, nil // the waiting request starts now
	l.mu.Unlock()
	close(call.done)
	return call.seq, call.err
}
