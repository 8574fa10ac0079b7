package security

import (
	"sync"
	"time"
)

// Limiter is a set of token buckets by key (an address, a user...): each
// key may spend Burst tokens at once, refilled at Rate per second. The set
// holds at most MaxKeys keys; past that, full (idle) buckets are dropped
// first, and if none is full the whole set is reset, which an attacker can
// only use to forgive others, never to block them. Safe from any goroutine;
// Allow takes one short mutex and does not allocate for a known key.
type Limiter struct {
	rate    float64 // tokens per second
	burst   float64
	maxKeys int

	mu      sync.Mutex // guards buckets
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     int64 // unix nanos of the last refill
}

// NewLimiter returns a limiter of rate tokens per second with the given
// burst per key. A rate <= 0 makes Allow always true (the limit is off).
func NewLimiter(rate float64, burst int, maxKeys int) *Limiter {
	if burst < 1 {
		burst = 1
	}
	if maxKeys <= 0 {
		maxKeys = 65536
	}
	return &Limiter{rate: rate, burst: float64(burst), maxKeys: maxKeys, buckets: map[string]*bucket{}}
}

// PerMinute is NewLimiter with n tokens a minute and a burst of n.
func PerMinute(n int) *Limiter { return NewLimiter(float64(n)/60, n, 0) }

// Off reports whether the limiter never refuses.
func (l *Limiter) Off() bool { return l == nil || l.rate <= 0 }

// Allow spends one token of key and reports whether there was one.
func (l *Limiter) Allow(key string) bool { return l.AllowN(key, 1, time.Now()) }

// Peek reports whether key has a token left, without spending it.
func (l *Limiter) Peek(key string) bool { return l.AllowN(key, 0, time.Now()) }

// AllowN spends n tokens of key at now and reports whether it had them
// (n = 0 only looks: is at least one token there?).
func (l *Limiter) AllowN(key string, n int, now time.Time) bool {
	if l.Off() {
		return true
	}
	t := now.UnixNano()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys {
			l.evictLocked(t)
		}
		b = &bucket{tokens: l.burst, at: t}
		l.buckets[key] = b
	} else if t > b.at {
		b.tokens = min(l.burst, b.tokens+float64(t-b.at)/1e9*l.rate)
		b.at = t
	}
	if n == 0 {
		return b.tokens >= 1
	}
	if b.tokens < float64(n) {
		return false
	}
	b.tokens -= float64(n)
	return true
}

// RetryAfter is how long until key has a token again (0: it has one now).
func (l *Limiter) RetryAfter(key string, now time.Time) time.Duration {
	if l.Off() {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return 0
	}
	tokens := min(l.burst, b.tokens+float64(now.UnixNano()-b.at)/1e9*l.rate)
	if tokens >= 1 {
		return 0
	}
	return time.Duration((1 - tokens) / l.rate * 1e9)
}

func (l *Limiter) evictLocked(now int64) {
	for k, b := range l.buckets {
		if b.tokens+float64(now-b.at)/1e9*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= l.maxKeys {
		clear(l.buckets)
	}
}

// Len is the number of keys held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}
