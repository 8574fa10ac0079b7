package presence

import (
	"sync"

	"github.com/bytedance/sonic"

	"partyline/codec"
)

// request is every field a /presence message may carry, undecoded. Its
// raw values alias the payload: valid only during OnMessage.
type request struct {
	Type      sonic.NoCopyRawMessage `json:"type"`
	Token     sonic.NoCopyRawMessage `json:"token"`
	Usernames sonic.NoCopyRawMessage `json:"usernames"`
}

var reqPool = sync.Pool{New: func() any { return new(request) }}

// maxNames is the most usernames one SUBSCRIBE_PRESENCE may carry.
const maxNames = 1000

// decode parses a /presence message into req and returns its type, or an
// error text for the ERROR reply.
func decode(payload []byte, req *request) (typ string, errText string) {
	if err := codec.JSONNoCopy.Unmarshal(payload, req); err != nil {
		if codec.ValidJSON(payload) {
			return "", "Message must be a JSON object"
		}
		return "", "Invalid JSON"
	}
	typ, ok := codec.Str(req.Type)
	if !ok || typ == "" {
		return "", "Missing or invalid type"
	}
	return typ, ""
}

// decodeNames parses SUBSCRIBE_PRESENCE's usernames: an array of 1..1000
// valid usernames, duplicates dropped.
func decodeNames(raw []byte) ([]string, string) {
	var names []string
	if len(raw) == 0 || codec.JSON.Unmarshal(raw, &names) != nil || raw[0] != '[' {
		return nil, "usernames must be an array of username strings"
	}
	if len(names) == 0 || len(names) > maxNames {
		return nil, "usernames must hold 1 to 1000 names"
	}
	seen := make(map[string]struct{}, len(names))
	out := names[:0]
	for _, n := range names {
		if !ValidName(n) {
			return nil, "invalid username in usernames: 1-128 bytes without control characters"
		}
		if _, dup := seen[n]; !dup {
			seen[n] = struct{}{}
			out = append(out, n)
		}
	}
	return out, ""
}

// ValidName reports whether s can be a username or group id: 1..128 bytes
// without control characters.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}
