// Package dialect adapts the load generator to one wire protocol.
//
// The scenarios only know rooms, members and timestamped messages; a Dialect
// turns those into the frames of one protocol and classifies what the server
// sends back. Adding a dialect (rooms, channels ...) means writing one small
// adapter and registering it in Lookup.
package dialect

import "fmt"

// Kind classifies a server message.
type Kind uint8

// Server message kinds. Dialects map their own types onto these.
const (
	Other      Kind = iota // anything the scenarios do not track
	Created                // the server created a room (Event.Room holds its name)
	Joined                 // this connection joined a room
	PeerJoined             // another member joined (Event.Peer)
	PeerLeft               // another member left (Event.Peer)
	Message                // a relayed message (Event.Peer = sender, Event.Data)
	Error                  // an error reply (Event.Text)
)

var kindNames = [...]string{"other", "created", "joined", "peer_joined", "peer_left", "message", "error"}

func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Event is one parsed server message. Its slices alias the payload given to
// Parse and are valid only as long as that payload.
type Event struct {
	Kind  Kind
	Room  []byte // Created, Joined: the room name or code
	Peer  []byte // PeerJoined, PeerLeft: the member; Message: the sender
	Data  []byte // Message: the raw JSON value the sender sent
	Stamp Stamp  // Message: the generator's stamp, when HasStamp
	// HasStamp: Data was a generator stamp and the dialect parsed it while
	// reading the message (saves a second pass over Data).
	HasStamp bool
	Text     []byte // Error: the human-readable text (still JSON-escaped)
	Members  int    // Joined: members listed, -1 when the dialect does not say
	// Reply, when not nil, is a message the client must send back at once
	// (the channels dialect's heartbeat answer). Never modified.
	Reply []byte
}

// Dialect speaks one protocol. The Append methods append one complete
// message payload (not a frame) to dst and return it; they never retain dst
// and are safe from any goroutine.
type Dialect interface {
	Name() string
	// Path is the handshake request path for a client of room (which is
	// empty before the room is known).
	Path(room string) string
	// ServerNamesRooms reports whether rooms are named by the server in
	// reply to AppendCreate (party room codes); otherwise the client picks
	// the name and create is just the first join.
	ServerNamesRooms() bool
	// EchoesSender reports whether a broadcast is also delivered to its
	// sender.
	EchoesSender() bool
	AppendCreate(dst []byte, clientID, room string, maxClients int) []byte
	AppendJoin(dst []byte, clientID, room string) []byte
	AppendLeave(dst []byte, room string) []byte
	// AppendSend broadcasts data (a JSON value) to room, or sends it to one
	// member when to is not empty.
	AppendSend(dst []byte, room, to string, data []byte) []byte
	// Parse classifies a server text message. ok is false when the payload
	// is not a JSON object of the dialect.
	Parse(payload []byte) (ev Event, ok bool)
}

// Lookup returns the dialect registered under name.
func Lookup(name string) (Dialect, error) {
	switch name {
	case "party":
		return Party{}, nil
	case "party-v2":
		return PartyV2{}, nil
	case "rooms":
		return Rooms{}, nil
	case "channels":
		return Channels{}, nil
	case "wsecho":
		return WSEcho{}, nil
	}
	return nil, fmt.Errorf("unknown dialect %q (known: party, party-v2, rooms, channels, wsecho)", name)
}

// Chat names the /chat dialect for the chat scenario, which speaks it
// itself (authentication, groups, acknowledgements: scenario/chat.go);
// the Dialect methods are only what the shared machinery needs.
type Chat struct{}

// Name implements Dialect.
func (Chat) Name() string { return "chat" }

// Path implements Dialect.
func (Chat) Path(string) string { return "/chat" }

// ServerNamesRooms implements Dialect: groups are named by the client.
func (Chat) ServerNamesRooms() bool { return false }

// EchoesSender implements Dialect.
func (Chat) EchoesSender() bool { return false }

// AppendCreate implements Dialect (unused).
func (Chat) AppendCreate(dst []byte, _, _ string, _ int) []byte { return dst }

// AppendJoin implements Dialect (unused).
func (Chat) AppendJoin(dst []byte, _, _ string) []byte { return dst }

// AppendLeave implements Dialect (unused).
func (Chat) AppendLeave(dst []byte, _ string) []byte { return dst }

// AppendSend implements Dialect (unused).
func (Chat) AppendSend(dst []byte, _, _ string, _ []byte) []byte { return dst }

// Parse implements Dialect (unused).
func (Chat) Parse([]byte) (Event, bool) { return Event{}, false }
