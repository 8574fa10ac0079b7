package chat

import (
	"strconv"
	"sync"
	"time"

	"partyline/dialect"
	"partyline/dialect/presence"
	"partyline/internal/security"
)

// quotas are the per-user limits on what a user may store, off at 0:
// messages per second (a token bucket per user, burst = the rate) and
// message content bytes per UTC day. Both are checked on the event loop
// before the message goes to the store, and both are per node (in-memory:
// the daily count starts again after a restart). A refused message gets an
// ERROR and the connection stays open. Safe from any goroutine.
type quotas struct {
	rate    *security.Limiter // nil: off
	perSec  float64
	perDay  int64 // 0: off
	maxKeys int

	mu   sync.Mutex // guards day, used
	day  int64      // the UTC day (Unix days) used counts
	used map[string]int64
}

func newQuotas(perSec float64, perDay int64) *quotas {
	q := &quotas{perSec: perSec, perDay: perDay, maxKeys: 1 << 20}
	if perSec > 0 {
		q.rate = security.NewLimiter(perSec, max(1, int(perSec)), q.maxKeys)
	}
	return q
}

// admit spends one message of user's rate and n bytes of its day, or
// replies ERROR and records the refusal. It returns a refund for the
// bytes (call it if the message is not stored after all), or nil if the
// message is refused. Loop: never blocks.
func (q *quotas) admit(c dialect.Conn, user string, n int, now time.Time) (refund func(), ok bool) {
	if q.rate != nil && !q.rate.AllowN(user, 1, now) {
		security.Record("chat_rate_limited", "user", user, "limit_per_second", q.perSec)
		presence.Error(c, "Rate limit exceeded: at most "+strconv.FormatFloat(q.perSec, 'f', -1, 64)+
			" messages per second; message not sent, slow down and try again")
		return nil, false
	}
	if q.perDay <= 0 {
		return func() {}, true
	}
	day := now.UTC().Unix() / 86400
	q.mu.Lock()
	if day != q.day || q.used == nil || len(q.used) >= q.maxKeys {
		q.day, q.used = day, map[string]int64{}
	}
	used := q.used[user]
	if used+int64(n) > q.perDay {
		q.mu.Unlock()
		security.Record("chat_quota_exceeded", "user", user, "bytes_per_day", q.perDay)
		presence.Error(c, "Daily storage quota exceeded: at most "+strconv.FormatInt(q.perDay, 10)+
			" bytes of messages per day ("+strconv.FormatInt(used, 10)+" used); message not sent, try again tomorrow (UTC)")
		return nil, false
	}
	q.used[user] = used + int64(n)
	q.mu.Unlock()
	return func() {
		q.mu.Lock()
		if q.day == day && q.used[user] >= int64(n) {
			q.used[user] -= int64(n)
		}
		q.mu.Unlock()
	}, true
}
