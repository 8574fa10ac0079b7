package party

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net"
	"time"

	"github.com/bytedance/sonic"

	"partyline/codec"
	"partyline/internal/security"
	"partyline/routing"
)

// Offsets, recovery, kept seats and the room-scan defence (docs/recovery.md).
//
// A party room is sequenced (routing.Hub.CreateSequenced): "message" and
// "state" frames carry the room's next seq, stamped, fanned out and filed
// in history under the room's lock, so every member sees a room's frames
// in seq order and a joiner's offset splits what it gets live from what it
// may recover. A member whose connection drops keeps its seat for
// --party-seat-grace as an away member (routing.Away takes its frames,
// history keeps them); its timer runs on its own goroutine and only
// queues frames.

// sinceReq is a join's "since": the last offset a client processed.
type sinceReq struct {
	epoch string
	seq   uint64
}

type sinceJSON struct {
	Epoch *string `json:"epoch"`
	Seq   *int64  `json:"seq"`
}

var errSince = errors.New(`invalid since: {"epoch": string, "seq": integer >= 0}`)

// parseSince decodes a join's since (nil when absent or null).
func parseSince(raw []byte) (*sinceReq, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var v sinceJSON
	if err := sonic.Unmarshal(raw, &v); err != nil || v.Epoch == nil || v.Seq == nil || *v.Seq < 0 {
		return nil, errSince
	}
	return &sinceReq{epoch: *v.Epoch, seq: uint64(*v.Seq)}, nil
}

// appendOffset writes `,"epoch":E,"seq":N` for a sequenced room (under its
// lock); nothing for a room without offsets.
func appendOffset(f *routing.Frame, r *routing.Room) {
	epoch, seq := r.OffsetLocked()
	if epoch == "" {
		return
	}
	f.AppendStr(`,"epoch":`)
	f.SetBuf(codec.AppendString(f.Buf(), epoch))
	f.AppendStr(`,"seq":`)
	f.SetBuf(codec.AppendInt(f.Buf(), int64(seq)))
}

// newEpoch is a random id for a new incarnation of a room.
func newEpoch() string {
	var b [9]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (d *Dialect) historyLimits() routing.HistoryLimits {
	return routing.HistoryLimits{Size: d.cfg.HistorySize, Bytes: d.cfg.HistoryBytes, TTL: d.cfg.HistoryTTL}
}

// HistoryBytes is the number of bytes held by every room's history.
func (d *Dialect) HistoryBytes() int64 { return d.held.Load() }

// goAway keeps the session's seat for --party-seat-grace: the others get
// peer_away, and peer_left if the member is not back in time. Loop only.
func (s *session) goAway() {
	r, m := s.room, s.me
	s.room, s.me = nil, nil
	am := awayMember(m, false)
	if r.Swap(m, am, func([]*routing.Member) {
		s.d.announce(r, `{"type":"peer_away","clientId":`, am, nil)
	}) {
		s.d.expireSeat(r, am, s.d.cfg.SeatGrace)
	}
}

// awayMember is the seat of m while its member is away.
func awayMember(m *routing.Member, restored bool) *routing.Member {
	pm := m.Data.(*member)
	return &routing.Member{ID: m.ID, Conn: routing.Away,
		Data: &member{token: pm.token, quotedID: pm.quotedID, away: true, restored: restored, meta: pm.meta}}
}

// expireSeat drops the away seat am after d unless it was reclaimed.
func (d *Dialect) expireSeat(r *routing.Room, am *routing.Member, after time.Duration) {
	time.AfterFunc(after, func() { d.dropSeat(r, am) })
}

// bucket is a token bucket of failed joins per minute, one per session
// (loop only, no allocation).
type bucket struct {
	tokens float64
	at     int64
	used   bool
}

func (b *bucket) take(perMinute int, now int64) bool {
	if perMinute <= 0 {
		return true
	}
	if !b.used {
		b.used, b.tokens, b.at = true, float64(perMinute), now
	}
	b.tokens = min(float64(perMinute), b.tokens+float64(now-b.at)/float64(time.Minute)*float64(perMinute))
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// joinFailed answers a join of a room that does not exist, and closes a
// connection (1008) that fails more often than --join-failures-per-minute,
// or whose address fails more often than --join-failures-per-minute-per-ip:
// guessing codes is how rooms are scanned.
func (s *session) joinFailed(msg string) {
	addr := s.c.Request().RemoteAddr
	if host, _, err := net.SplitHostPort(addr); err == nil {
		addr = host
	}
	connOK := s.fails.take(s.d.cfg.JoinFailuresPerMinute, time.Now().UnixNano())
	ipOK := connOK && s.d.ipFails.Allow(addr) // a closing connection spends no more of its address's
	if connOK && ipOK {
		s.fail(msg)
		return
	}
	security.Record("party_join_throttled", "addr", addr)
	s.fail("too many failed joins: try again later")
	s.c.Close(codec.ClosePolicyViolation, "too many failed joins")
}

// Drain tells the dialect the server is shutting down: with persistence,
// connections that close from now on keep their seats, as the store has
// them, for the next start.
func (d *Dialect) Drain() { d.draining.Store(true) }
