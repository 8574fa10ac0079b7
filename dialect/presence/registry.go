package presence

import (
	"container/heap"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"partyline/codec"
	"partyline/routing"
)

// Registry tracks who is online across the /chat and /presence
// connections of this process (and, in cluster mode, of the other nodes:
// SetRemote) and tells this process's watchers.
//
// A user is online while it has an authenticated connection on any node;
// when the last one closes it stays online for the grace period, so a
// quick reconnect does not flap. Grace deadlines live in one min-heap
// served by a single notifier goroutine, which also publishes status
// changes and answers status requests in one order: what a watcher is
// told is always the last published status, and never goes backwards.
//
// Connect, Disconnect, Watch, Unwatch and Subscribe are safe from any
// goroutine and never block on I/O (they take r.mu briefly); the
// notifier reads contacts from the store outside the lock.
type Registry struct {
	grace    time.Duration
	contacts func(user string) ([]string, error)
	log      *slog.Logger
	watchers *routing.Hub // username -> that user's presence connections
	now      func() time.Time

	// MaxSubscriptions bounds the names one watcher may subscribe to
	// (0: DefaultMaxSubscriptions). Set before use.
	MaxSubscriptions int

	// OnLocal, if set, runs after the number of this process's
	// connections of a user changed (outside the lock; it must not
	// block). Cluster mode publishes the count with it. Set before use.
	OnLocal func(user string)

	mu      sync.Mutex // guards the following
	users   map[string]*entry
	pending graceHeap
	dirty   []*entry                         // status changed, not yet published
	jobs    []func()                         // status answers, in request order
	subs    map[string]map[*Watcher]struct{} // username -> subscribed watchers
	nsubs   int                              // entries in subs

	wake      chan struct{}
	stop      chan struct{}
	done      chan struct{}
	startOnce sync.Once   // the notifier starts with the first event
	started   atomic.Bool // the notifier was started
}

// entry is one user's presence. Guarded by Registry.mu.
type entry struct {
	name    string
	conns   int       // authenticated connections here
	remote  int       // authenticated connections on other nodes
	online  bool      // current status
	changed time.Time // when the current status began
	offAt   time.Time // pending offline (valid while hidx >= 0)
	hidx    int       // index in the grace heap, -1 when not pending
	pub     bool      // last published status
	pubAt   time.Time // when the published status began
	dirty   bool
}

// Watcher is one presence connection.
type Watcher struct {
	user string
	conn routing.Sender
	m    *routing.Member
	subs []string // guarded by Registry.mu
}

// DefaultMaxSubscriptions is the default bound of the names one presence
// connection may subscribe to.
const DefaultMaxSubscriptions = 1000

// Subscribe's refusals.
var (
	ErrTooManySubscriptions = errors.New("too many subscriptions")
	ErrBusy                 = errors.New("server busy")
)

const maxJobs = 1 << 16

// NewRegistry returns a registry (its goroutine starts with the first
// event); contacts lists a user's contacts (it may
// block: it runs on the notifier goroutine).
func NewRegistry(grace time.Duration, contacts func(string) ([]string, error), log *slog.Logger) *Registry {
	r := &Registry{grace: grace, contacts: contacts, log: log, watchers: routing.NewHub(), now: time.Now,
		users: map[string]*entry{}, subs: map[string]map[*Watcher]struct{}{},
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	return r
}

// Close stops the notifier.
func (r *Registry) Close() {
	r.startOnce.Do(func() {}) // no notifier after Close
	if !r.started.Load() {
		return
	}
	select {
	case <-r.stop:
	default:
		close(r.stop)
	}
	<-r.done
}

func (r *Registry) signal() {
	r.startOnce.Do(func() {
		r.started.Store(true)
		go r.run()
	})
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Connect counts a new authenticated connection of user.
func (r *Registry) Connect(user string) {
	r.mu.Lock()
	e := r.entryLocked(user)
	e.conns++
	r.countedLocked(e, e.conns+e.remote-1)
	r.mu.Unlock()
	if r.OnLocal != nil {
		r.OnLocal(user)
	}
}

// Disconnect uncounts one; the last one anywhere starts the grace period.
func (r *Registry) Disconnect(user string) {
	r.mu.Lock()
	e := r.users[user]
	if e == nil || e.conns == 0 {
		r.mu.Unlock()
		return
	}
	e.conns--
	r.countedLocked(e, e.conns+e.remote+1)
	r.mu.Unlock()
	if r.OnLocal != nil {
		r.OnLocal(user)
	}
}

// SetRemote sets how many authenticated connections user has on the other
// nodes (cluster mode, from the shared census). A user online only
// elsewhere is online here too, and goes offline the grace period after
// its last connection anywhere is gone.
func (r *Registry) SetRemote(user string, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.users[user]
	if e == nil && n == 0 {
		return
	}
	if e == nil {
		e = r.entryLocked(user)
	}
	before := e.conns + e.remote
	e.remote = n
	r.countedLocked(e, before)
	if e.conns == 0 && e.remote == 0 && !e.online && e.hidx < 0 && !e.dirty {
		delete(r.users, user) // never published online here: forget it
	}
}

// Local is the number of this process's authenticated connections of user.
func (r *Registry) Local(user string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e := r.users[user]; e != nil {
		return e.conns
	}
	return 0
}

func (r *Registry) entryLocked(user string) *entry {
	e := r.users[user]
	if e == nil {
		e = &entry{name: user, hidx: -1}
		r.users[user] = e
	}
	return e
}

// countedLocked applies a change of e's connection total from before: the
// first connection anywhere makes it online (cancelling a pending
// offline), the last one starts the grace period.
func (r *Registry) countedLocked(e *entry, before int) {
	now := e.conns + e.remote
	switch {
	case now > 0 && before == 0:
		if e.hidx >= 0 { // back within the grace period: no change
			heap.Remove(&r.pending, e.hidx)
		}
		if !e.online {
			e.online, e.changed = true, r.now()
			r.markDirtyLocked(e)
		}
	case now == 0 && before > 0:
		e.offAt = r.now().Add(r.grace)
		heap.Push(&r.pending, e)
		r.signal()
	}
}

func (r *Registry) markDirtyLocked(e *entry) {
	if !e.dirty {
		e.dirty = true
		r.dirty = append(r.dirty, e)
		r.signal()
	}
}

// Status is user's last published status and when it began (now if the
// user is not known).
func (r *Registry) Status(user string) (online bool, since time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.statusLocked(user)
}

func (r *Registry) statusLocked(user string) (bool, time.Time) {
	if e := r.users[user]; e != nil && !e.pubAt.IsZero() {
		return e.pub, e.pubAt
	}
	return false, r.now()
}

// Watch registers a presence connection of user and queues, for it, the
// current status of each of user's contacts. It reports false when the
// registry is overloaded (nothing was registered).
func (r *Registry) Watch(user string, conn routing.Sender, id string) (*Watcher, bool) {
	w := &Watcher{user: user, conn: conn, m: &routing.Member{ID: id, Conn: conn}}
	// Join first: an update published from now on reaches w, and the
	// statuses queued below are at least as new as any it missed.
	if _, _, err := r.watchers.JoinOrCreate(user, w.m, nil, nil); err != nil {
		r.log.Error("presence: watch", "user", user, "err", err)
		return nil, false
	}
	if !r.queue(func() {
		contacts, err := r.contacts(user)
		if err != nil {
			r.log.Error("presence: contacts", "user", user, "err", err)
		}
		r.sendStatuses(conn, contacts)
	}) {
		r.Unwatch(w)
		return nil, false
	}
	return w, true
}

// Unwatch removes a presence connection and its subscriptions.
func (r *Registry) Unwatch(w *Watcher) {
	if room := r.watchers.Get(w.user); room != nil {
		room.Leave(w.m)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, name := range w.subs {
		if set := r.subs[name]; set != nil {
			delete(set, w)
			if len(set) == 0 {
				delete(r.subs, name)
			}
		}
	}
	r.nsubs -= len(w.subs)
	w.subs = nil
}

// Subscribe adds names to w's subscriptions and queues their current
// status for w. It changes nothing and returns ErrTooManySubscriptions
// when w would pass MaxSubscriptions distinct names, ErrBusy when the
// registry is overloaded. ok, if not nil, runs before anything about
// names can reach w (it must only queue frames).
func (r *Registry) Subscribe(w *Watcher, names []string, ok func()) error {
	r.mu.Lock()
	if len(r.jobs) >= maxJobs {
		r.mu.Unlock()
		return ErrBusy
	}
	if len(w.subs)+len(names) > r.maxSubs() && len(w.subs)+r.newNames(w, names) > r.maxSubs() {
		r.mu.Unlock()
		return ErrTooManySubscriptions
	}
	if ok != nil {
		ok()
	}
	for _, n := range names {
		set := r.subs[n]
		if set == nil {
			set = map[*Watcher]struct{}{}
			r.subs[n] = set
		}
		if _, dup := set[w]; !dup {
			set[w] = struct{}{}
			w.subs = append(w.subs, n)
			r.nsubs++
		}
	}
	r.jobs = append(r.jobs, func() { r.sendStatuses(w.conn, names) })
	r.mu.Unlock()
	r.signal()
	return nil
}

func (r *Registry) maxSubs() int {
	if r.MaxSubscriptions > 0 {
		return r.MaxSubscriptions
	}
	return DefaultMaxSubscriptions
}

// newNames counts the distinct names w has not subscribed to yet.
// Guarded by r.mu.
func (r *Registry) newNames(w *Watcher, names []string) int {
	seen := make(map[string]struct{}, len(names))
	for _, n := range names {
		if _, dup := r.subs[n][w]; !dup {
			seen[n] = struct{}{}
		}
	}
	return len(seen)
}

func (r *Registry) queue(job func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.jobs) >= maxJobs {
		return false
	}
	r.jobs = append(r.jobs, job)
	r.signal()
	return true
}

// sendStatuses sends the published status of each name to conn.
// Notifier only.
func (r *Registry) sendStatuses(conn routing.Sender, names []string) {
	for _, n := range names {
		r.mu.Lock()
		online, at := r.statusLocked(n)
		r.mu.Unlock()
		f := updateFrame(n, online, at)
		conn.Send(f, false)
		f.Release()
	}
}

type update struct {
	name   string
	online bool
	at     time.Time
}

// run is the notifier: it expires grace periods, publishes changes and
// answers status requests, in that order, each pass.
func (r *Registry) run() {
	defer close(r.done)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-r.wake:
		case <-t.C:
		}
		updates, jobs, next := r.take()
		if next.IsZero() {
			t.Reset(time.Hour)
		} else {
			t.Reset(max(time.Until(next), 0))
		}
		for _, u := range updates {
			r.publish(u)
		}
		for _, j := range jobs {
			j()
		}
	}
}

// take applies due grace deadlines and collects what to publish.
func (r *Registry) take() (updates []update, jobs []func(), next time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	for len(r.pending) > 0 && !r.pending[0].offAt.After(now) {
		e := heap.Pop(&r.pending).(*entry)
		e.online, e.changed = false, now
		r.markDirtyLocked(e)
	}
	for _, e := range r.dirty {
		e.dirty = false
		if e.online != e.pub {
			e.pub, e.pubAt = e.online, e.changed
			updates = append(updates, update{e.name, e.online, e.changed})
		}
		if !e.online && e.conns == 0 && e.remote == 0 && e.hidx < 0 {
			delete(r.users, e.name)
		}
	}
	clear(r.dirty)
	r.dirty = r.dirty[:0]
	jobs, r.jobs = r.jobs, nil
	if len(r.pending) > 0 {
		next = r.pending[0].offAt
	}
	return updates, jobs, next
}

// publish sends u to the presence connections of u's contacts and of its
// subscribers, once each. Notifier only.
func (r *Registry) publish(u update) {
	r.mu.Lock()
	subs := make([]routing.Sender, 0, len(r.subs[u.name]))
	for w := range r.subs[u.name] {
		subs = append(subs, w.conn)
	}
	r.mu.Unlock()
	if r.watchers.Rooms() == 0 && len(subs) == 0 {
		return // nobody is watching: skip the contacts lookup
	}
	var to []routing.Sender
	seen := map[routing.Sender]struct{}{}
	add := func(s routing.Sender) {
		if _, dup := seen[s]; !dup {
			seen[s] = struct{}{}
			to = append(to, s)
		}
	}
	if r.watchers.Rooms() > 0 {
		contacts, err := r.contacts(u.name)
		if err != nil {
			r.log.Error("presence: contacts", "user", u.name, "err", err)
		}
		for _, c := range contacts {
			if room := r.watchers.Get(c); room != nil {
				for _, m := range room.Members() {
					add(m.Conn)
				}
			}
		}
	}
	for _, s := range subs {
		add(s)
	}
	if len(to) == 0 {
		return
	}
	f := updateFrame(u.name, u.online, u.at)
	for _, s := range to {
		s.Send(f, false)
	}
	f.Release()
}

func updateFrame(name string, online bool, at time.Time) *routing.Frame {
	f := routing.NewText()
	f.AppendStr(`{"type":"PRESENCE_UPDATE","username":`)
	f.SetBuf(codec.AppendString(f.Buf(), name))
	if online {
		f.AppendStr(`,"status":"online","timestamp":`)
	} else {
		f.AppendStr(`,"status":"offline","timestamp":`)
	}
	f.SetBuf(AppendTime(f.Buf(), at))
	f.Append('}')
	return f.End()
}

// Online is the number of users currently online (for tests and metrics).
func (r *Registry) Online() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.users {
		if e.online {
			n++
		}
	}
	return n
}

// graceHeap is a min-heap of pending offline deadlines, indexed so that a
// reconnect removes its entry in O(log n).
type graceHeap []*entry

func (h graceHeap) Len() int           { return len(h) }
func (h graceHeap) Less(i, j int) bool { return h[i].offAt.Before(h[j].offAt) }
func (h graceHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *graceHeap) Push(x any) {
	e := x.(*entry)
	e.hidx = len(*h)
	*h = append(*h, e)
}
func (h *graceHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.hidx = -1
	return e
}

// WatcherID makes a member ID for a connection id.
func WatcherID(id uint64) string { return strconv.FormatUint(id, 10) }
