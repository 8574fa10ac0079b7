package party

import (
	"errors"
	"os"
	"path/filepath"
	"time"

	"partyline/routing"
	"partyline/store"
)

// Persistence: with a PersistDir, every party room is kept in a
// store.RoomLog: its seats on each membership change, its retained state,
// and each frame of its history as it is published. The event loops only
// record changes (under the room's lock, so a room's records are in its own
// order); the log's writer commits them every PersistInterval with one
// fsync. On start, the rooms come back with every seat away for
// RestoreGrace; only a seat's token reclaims it.

// persister is the dialect's durable copy of its rooms.
type persister struct {
	log *store.RoomLog
	dir string
}

// cleanMarker is written by a graceful shutdown after the last commit and
// removed at start: without it the previous run crashed and may have lost
// up to one interval of frames (their seqs are skipped, see SkipLost).
const cleanMarker = "CLEAN"

// lostSeqs is how many seqs a restored room skips after a crash: more than
// a room can publish in one persist interval.
const lostSeqs = 1 << 20

// Start starts the dialect's rooms (roomStore.start).
func (d *Dialect) Start() error { return d.rooms.start() }

// start starts the history sweeper, opens the room store and restores the
// rooms it holds. A directory that cannot be used is logged and the dialect
// runs without persistence; the server still starts.
func (d local) start() error {
	if d.cfg.HistoryTTL > 0 && d.sweepStop == nil {
		d.sweepStop = make(chan struct{})
		go d.sweep(d.sweepStop, min(d.cfg.HistoryTTL/4, 10*time.Second))
	}
	if d.cfg.PersistDir == "" {
		return nil
	}
	dir := d.cfg.PersistDir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		d.log.Warn("party: rooms will not survive a restart: cannot create the store directory", "dir", dir, "err", err)
		return nil
	}
	rl, err := store.OpenRoomLog(dir, store.RoomLogOptions{Interval: d.cfg.PersistInterval, Logger: d.log,
		MinFree: uint64(max(d.cfg.StoreMinFree, 1))}) // the log raises a floor below its lowest

	if err != nil {
		d.log.Warn("party: rooms will not survive a restart: cannot open the store", "dir", dir, "err", err)
		return nil
	}
	t0 := time.Now()
	recs, err := rl.Load()
	if err != nil && !errors.Is(err, store.ErrCorruptRoom) {
		_ = rl.Close()
		d.log.Warn("party: rooms will not survive a restart: cannot read the store", "dir", dir, "err", err)
		return nil
	}
	if err != nil {
		d.log.Error("party: some persisted rooms were unreadable and skipped", "err", err)
	}
	loaded := time.Since(t0)
	clean := true
	if _, err := os.Stat(filepath.Join(dir, cleanMarker)); err != nil {
		clean = false
	}
	_ = os.Remove(filepath.Join(dir, cleanMarker))
	d.persist = &persister{log: rl, dir: dir}
	d.onGone = func(r *routing.Room) { rl.Delete(r.Name) }
	seats := 0
	for i := range recs {
		seats += d.restore(&recs[i], clean)
	}
	if len(recs) > 0 {
		d.log.Info("party: rooms restored", "rooms", len(recs), "seats", seats, "clean_shutdown", clean,
			"took", time.Since(t0).Round(time.Millisecond), "load", loaded.Round(time.Millisecond), "grace", d.cfg.RestoreGrace)
	}
	return nil
}

// restore puts one persisted room back with every seat away, and returns
// the number of seats.
func (d *Dialect) restore(rec *store.RoomRecord, clean bool) int {
	r := d.hub.CreateSequenced(rec.Code, rec.Max, rec.Created, rec.Epoch, rec.Seq, d.historyLimits(), &d.held)
	if r == nil {
		return 0
	}
	st := &roomState{born: true} // announced (room.created) before the restart
	if rec.State != nil {
		st.state = routing.NewTextExact(rec.State)
		d.states.force(st, int64(st.state.Len())) // restored state was kept before: it stays
	}
	r.SetExt(st)
	es := make([]routing.Entry, len(rec.History))
	for i, e := range rec.History {
		es[i] = routing.Entry{Seq: e.Seq, From: e.From, To: e.To, At: e.At.UnixNano(), F: routing.NewTextExact(e.Payload)}
	}
	r.Restore(es)
	if !clean {
		r.SkipLost(lostSeqs)
	}
	n := 0
	for _, s := range rec.Seats {
		m := newMember(s.ID, routing.Away)
		m.Data.(*member).token = s.Token
		am := awayMember(m, true)
		if _, err := r.Join(am, nil, nil); err == nil {
			d.expireSeat(r, am, d.cfg.RestoreGrace)
			n++
		}
	}
	if n == 0 { // nobody to come back: the room is gone
		d.persist.log.Delete(rec.Code)
		d.hub.Remove(r)
		dropState(r)
	}
	return n
}

// Shutdown records every room's final offset and closes the store (bounded
// in time); after a complete flush it leaves the clean-shutdown marker.
func (d *Dialect) Shutdown() error {
	if d.sweepStop != nil {
		close(d.sweepStop)
		d.sweepStop = nil
	}
	if d.hook != nil {
		d.hook.client.CloseIdleConnections() // the join hook's kept-alive connections
	}
	p := d.persist
	if p == nil {
		return nil
	}
	d.hub.Range(func(r *routing.Room) bool {
		r.Locked(func(members []*routing.Member) { d.persistSeats(r, members) })
		return true
	})
	if err := p.log.Close(); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(p.dir, cleanMarker), nil, 0o644)
}

// persistSeats records r's seats and offset; under r's lock.
func (d *Dialect) persistSeats(r *routing.Room, members []*routing.Member) {
	if d.persist == nil || !r.Sequenced() {
		return
	}
	epoch, seq := r.OffsetLocked()
	seats := make([]store.Seat, len(members))
	for i, m := range members {
		seats[i] = store.Seat{ID: m.ID, Token: m.Data.(*member).token}
	}
	d.persist.log.PutMeta(store.RoomMeta{Code: r.Name, Max: r.Max, Created: r.Created, Epoch: epoch, Seq: seq, Seats: seats})
}

// persistState records r's retained state f; under r's lock.
func (d *Dialect) persistState(r *routing.Room, f *routing.Frame) {
	if d.persist == nil {
		return
	}
	f.Retain()
	d.persist.log.PutState(r.Name, f)
}

// committed records a frame just filed in r's history (gone: the highest
// seq that has left it); under r's lock.
func (d *Dialect) committed(r *routing.Room, f *routing.Frame, seq uint64, from, to string, gone uint64) {
	p := d.persist
	if p == nil {
		return
	}
	st, _ := r.Ext().(*roomState)
	if st == nil {
		return
	}
	if gone < seq { // kept in history: keep it on disk too
		f.Retain()
		p.log.Append(r.Name, store.HistoryEntry{Seq: seq, From: from, To: to, At: time.Now(), Frame: f})
	}
	if gone > st.trimmed {
		p.log.Trim(r.Name, gone)
		st.trimmed = gone
	}
}

// sweep releases history that has outlived the TTL in rooms that publish
// no more (a publish evicts it otherwise), every period until stop.
func (d *Dialect) sweep(stop chan struct{}, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			d.hub.Range(func(r *routing.Room) bool {
				if r.Sequenced() {
					d.expired(r, r.ExpireHistory(now))
				}
				return true
			})
		}
	}
}

// expired tells the store that r's history up to gone has left it.
func (d *Dialect) expired(r *routing.Room, gone uint64) {
	if d.persist == nil {
		return
	}
	r.Locked(func([]*routing.Member) {
		if st, _ := r.Ext().(*roomState); st != nil && gone > st.trimmed {
			d.persist.log.Trim(r.Name, gone)
			st.trimmed = gone
		}
	})
}

// Health reports the room store in /healthz: degraded while it cannot
// commit (free space below its floor, or a failed commit); rooms keep
// working from memory meanwhile.
func (d *Dialect) Health() (string, error) {
	if d.persist == nil {
		return "party_rooms_store", nil
	}
	st := d.persist.log.Stats()
	switch {
	case st.Failures > 0 && st.LastError != "":
		return "party_rooms_store", errors.New("room changes are no longer persisted: " + st.LastError)
	case st.LowDisk:
		return "party_rooms_store", errors.New("free space below the floor: room changes are kept in memory until it returns")
	}
	return "party_rooms_store", nil
}
