package dialect

import (
	"encoding/json"
	"time"
)

// RoomAPI is implemented by dialects whose rooms the HTTP rooms API
// (/api/rooms, package httpapi, docs/api.md) lists and acts on. Every
// method runs on a net/http goroutine: it may take a room's lock for
// queueing frames and closing connections (which never block), and in
// cluster mode it may make NATS round trips, but it must never run on, or
// wait for, an event loop. A refusal is an *APIError.
type RoomAPI interface {
	Name() string
	// ListRooms returns up to limit rooms whose code sorts after after
	// (""= from the start) and that pass f, in code order, and whether
	// more may follow.
	ListRooms(f RoomFilter, after string, limit int) (rooms []RoomSummary, more bool, err error)
	// CreateRoom creates an empty room that lives the dialect's empty-room
	// TTL unless someone joins it.
	CreateRoom(spec RoomSpec) (RoomSummary, error)
	// RoomDetail describes one room with its members.
	RoomDetail(code string) (RoomDetail, error)
	// SendToRoom delivers data (one JSON value) as a "message" from the
	// reserved sender "server" to every member, or to the member to.
	SendToRoom(code string, data []byte, to string) (delivered int, err error)
	// KickMember closes clientID's connection with 4003 and reason; the
	// others see it leave.
	KickMember(code, clientID, reason string) error
	// CloseRoom closes every member's connection with 4004 "room closed"
	// and deletes the room; it returns how many members it closed.
	CloseRoom(code string) (closed int, err error)
}

// RoomFilter selects rooms in ListRooms.
type RoomFilter struct {
	PublicOnly bool // only rooms marked public
	HasSpace   bool // only rooms with fewer members than maxClients
	// Prefix keeps the rooms whose code starts with it ("": all); a
	// dialect with case-insensitive codes compares it in their case.
	Prefix string
}

// RoomSpec is a room to create through the API.
type RoomSpec struct {
	MaxClients int             // 0: the dialect's default
	Public     bool            // listed with public=true
	Metadata   json.RawMessage // nil: none; at most MaxMetadata bytes
}

// MaxMetadata is the largest room metadata, encoded JSON bytes.
const MaxMetadata = 1024

// RoomSummary is a room in a listing.
type RoomSummary struct {
	Code       string          `json:"code"`
	Dialect    string          `json:"dialect"`
	Members    int             `json:"members"`
	MaxClients float64         `json:"maxClients"`
	Created    time.Time       `json:"created"`
	Public     bool            `json:"public"`
	Metadata   json.RawMessage `json:"metadata,omitempty"`
}

// RoomDetail is one room with its members.
type RoomDetail struct {
	RoomSummary
	Clients    []RoomClient `json:"clients"`
	StateBytes int          `json:"stateBytes"`      // the retained state frame, 0: none
	Epoch      string       `json:"epoch,omitempty"` // rooms with offsets (docs/recovery.md)
	Seq        uint64       `json:"seq"`             // the seq of the room's latest frame
}

// RoomClient is one member of a room.
type RoomClient struct {
	ClientID string `json:"clientId"`
	Index    *int   `json:"index,omitempty"` // party-v2: the slot index
	Away     bool   `json:"away,omitempty"`  // a kept seat whose connection dropped
	// Metadata is what the party dialects' join hook attached to the
	// member (compact JSON); nil: none.
	Metadata json.RawMessage `json:"metadata,omitempty"`
}

// APIError is a refusal of the rooms API with an HTTP status.
type APIError struct {
	Status int
	Msg    string
}

func (e *APIError) Error() string { return e.Msg }

// APIErr returns an *APIError.
func APIErr(status int, msg string) error { return &APIError{Status: status, Msg: msg} }
