// Package store keeps chat history, groups and membership: the Store
// interface, and Pebble, an embedded durable implementation; and party
// rooms: RoomLog.
//
// Every Store method may block on disk: call it from a worker goroutine,
// never from an event loop. Writes return only once they are durable
// (fsync'd); concurrent writes share one fsync (group commit). A write the
// disk cannot take (free space below SpaceGuard's floor, ENOSPC) fails
// with an error wrapping ErrStorageFull instead of crashing or blocking;
// Close returns within PebbleOptions.CloseTimeout whatever the disk does.
//
// RoomLog is the opposite: its writes (PutMeta, PutState, Append, Trim,
// Delete) are made for event loops. They only record the change in memory
// and never block on the disk; a background writer commits everything
// pending once per interval with one fsync, so a crash loses at most the
// last interval. Its Load, Flush and Close block on the disk.
package store

import (
	"errors"
	"time"
)

// Errors returned by Store methods.
var (
	ErrClosed         = errors.New("store closed")
	ErrUnknownMessage = errors.New("unknown message id")
	ErrAlreadyMember  = errors.New("already a member")
	ErrNotMember      = errors.New("not a member")
	ErrInvalid        = errors.New("invalid name")
)

// MaxName is the longest username or group id in bytes.
const MaxName = 128

// Message is one stored chat message. Exactly one of To (one-to-one) and
// GroupID (group) is set.
type Message struct {
	ID      ID
	From    string
	To      string
	GroupID string
	ChatID  string // one-to-one: the chatId the sender gave (or derived)
	Content string
}

// Time is when the server accepted the message (millisecond precision).
func (m *Message) Time() time.Time { return m.ID.Time() }

// Conv names a conversation: a group, or the unordered pair of users of a
// one-to-one chat.
type Conv struct {
	group string
	a, b  string // a <= b
}

// Direct is the one-to-one conversation between x and y (in either order).
func Direct(x, y string) Conv {
	if y < x {
		x, y = y, x
	}
	return Conv{a: x, b: y}
}

// Group is the conversation of group id.
func Group(id string) Conv { return Conv{group: id} }

func (c Conv) valid() bool {
	if c.group != "" {
		return ValidName(c.group)
	}
	return ValidName(c.a) && ValidName(c.b)
}

// IsGroup reports whether c is a group conversation.
func (c Conv) IsGroup() bool { return c.group != "" }

// Page is one page of history.
type Page struct {
	Messages []Message // oldest first
	HasMore  bool      // older messages exist
}

// Store is the chat persistence seam. Methods are safe for concurrent use
// and may block on I/O.
type Store interface {
	// Append stores m in conv and returns it with its ID assigned, once it
	// is durable. m.From must be a participant of conv (the caller checks
	// group membership).
	Append(conv Conv, m Message) (Message, error)
	// History returns the newest limit messages of conv strictly older
	// than before (zero: the newest overall). An unknown before is
	// ErrUnknownMessage; maxBytes (>0) caps the page's encoded content.
	History(conv Conv, before ID, limit, maxBytes int) (Page, error)
	// Join makes user a member of group, durably; ErrAlreadyMember if it is.
	Join(group, user string) error
	// Leave removes user from group, durably; ErrNotMember if it is not.
	Leave(group, user string) error
	// IsMember reports whether user is a member of group.
	IsMember(group, user string) (bool, error)
	// Members lists group's members in byte order.
	Members(group string) ([]string, error)
	// Contacts lists the users who share a group or a one-to-one
	// conversation with user, without user, in byte order.
	Contacts(user string) ([]string, error)
	// Close finishes pending writes, flushes and closes. Idempotent.
	Close() error
}

// ValidName reports whether s can be a username or group id: 1..MaxName
// bytes without control characters.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxName {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}
