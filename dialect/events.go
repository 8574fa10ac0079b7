package dialect

// Events receives the lifecycle events of rooms and their members (the
// webhooks of package webhook). A dialect holds a nil Events when nothing
// listens, so emitting costs a nil check.
//
// Emit must never block and must not keep the event's strings mutable
// (they are immutable Go strings already). It may be called from any
// goroutine, under a room's lock included: a dialect emits a room's events
// under that room's lock (or from the one goroutine that owns the change),
// so their Emit order is the order they happened in.
type Events interface {
	Emit(e Event)
}

// EventType is the kind of an Event.
type EventType uint8

// The event types; String gives their wire names.
const (
	RoomCreated EventType = iota + 1
	RoomClosed
	MemberJoined
	MemberLeft
)

func (t EventType) String() string {
	switch t {
	case RoomCreated:
		return "room.created"
	case RoomClosed:
		return "room.closed"
	case MemberJoined:
		return "member.joined"
	case MemberLeft:
		return "member.left"
	}
	return "unknown"
}

// Event is one room or member event. Member fields are empty for room
// events; a chat-like dialect sets Username instead of ClientID.
type Event struct {
	Type     EventType
	Dialect  string
	Room     string
	ClientID string
	Username string
	Time     int64 // Unix nanoseconds; zero: Emit stamps the current time
}
