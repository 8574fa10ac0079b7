package party

import (
	"time"

	"partyline/dialect"
	"partyline/routing"
)

// nopConn is a Conn whose Send keeps nothing: it measures the dialect and
// routing alone.
type nopConn struct {
	id   uint64
	sent int
}

func (c *nopConn) Send(*routing.Frame, bool) bool { c.sent++; return true }
func (c *nopConn) ID() uint64                     { return c.id }
func (c *nopConn) Request() *dialect.Request      { return &dialect.Request{} }
func (c *nopConn) SendText([]byte)                {}
func (c *nopConn) Close(uint16, string)           {}
func (c *nopConn) SetTimer(time.Time)             {}
func (c *nopConn) Do(fn func())                   { fn() }
