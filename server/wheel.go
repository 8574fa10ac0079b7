package server

import "time"

// tickDur is the timer resolution; wheelSize*tickDur is the horizon after
// which an entry waits one more turn of the wheel.
const (
	tickDur   = 25 * time.Millisecond
	wheelSize = 2048
)

// wheel is a hashed timing wheel of connections: each connection is filed
// once, under its earliest deadline, in an intrusive list. Loop only.
type wheel struct {
	start int64 // unix nanos of tick 0
	cur   int64 // last tick processed
	slots [wheelSize]*conn
	due   []*conn
}

func (w *wheel) init(start time.Time) {
	w.start = start.UnixNano()
	w.cur = (time.Now().UnixNano() - w.start) / int64(tickDur)
}

// set files c under deadline at (unix nanos); 0 unfiles it.
func (w *wheel) set(c *conn, at int64) {
	w.remove(c)
	if at == 0 {
		return
	}
	t := (at - w.start + int64(tickDur) - 1) / int64(tickDur)
	if t <= w.cur {
		t = w.cur + 1
	}
	c.tAt = t
	head := &w.slots[t%wheelSize]
	c.tNext = *head
	if *head != nil {
		(*head).tPrev = c
	}
	*head = c
}

func (w *wheel) remove(c *conn) {
	if c.tAt == 0 {
		return
	}
	if c.tPrev != nil {
		c.tPrev.tNext = c.tNext
	} else {
		w.slots[c.tAt%wheelSize] = c.tNext
	}
	if c.tNext != nil {
		c.tNext.tPrev = c.tPrev
	}
	c.tPrev, c.tNext, c.tAt = nil, nil, 0
}

// advance fires every entry due by now. fn may re-file or close any
// connection.
func (w *wheel) advance(now int64, fn func(*conn)) {
	target := (now - w.start) / int64(tickDur)
	due := w.due[:0]
	for w.cur < target {
		w.cur++
		for c := w.slots[w.cur%wheelSize]; c != nil; {
			next := c.tNext
			if c.tAt <= w.cur {
				w.remove(c)
				due = append(due, c)
			}
			c = next
		}
	}
	for _, c := range due {
		if c.state != stateClosed && c.tAt == 0 {
			fn(c)
		}
	}
	clear(due)
	w.due = due[:0]
}
