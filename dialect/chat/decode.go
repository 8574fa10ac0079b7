package chat

import (
	"sync"

	"github.com/bytedance/sonic"

	"partyline/codec"
	"partyline/dialect/presence"
	"partyline/store"
)

// History limits (docs/protocols.md): default and largest page.
const (
	DefaultLimit = 50
	MaxLimit     = 200
	MaxChatID    = 256 // bytes
)

// raw is every field a /chat message may carry, undecoded; the values
// alias the payload.
type raw struct {
	Type     sonic.NoCopyRawMessage `json:"type"`
	Token    sonic.NoCopyRawMessage `json:"token"`
	From     sonic.NoCopyRawMessage `json:"from"`
	To       sonic.NoCopyRawMessage `json:"to"`
	Content  sonic.NoCopyRawMessage `json:"content"`
	ChatID   sonic.NoCopyRawMessage `json:"chatId"`
	GroupID  sonic.NoCopyRawMessage `json:"groupId"`
	Username sonic.NoCopyRawMessage `json:"username"`
	Limit    sonic.NoCopyRawMessage `json:"limit"`
	Before   sonic.NoCopyRawMessage `json:"before"`
}

var rawPool = sync.Pool{New: func() any { return new(raw) }}

// request is a decoded, shape-checked /chat message. Strings are copies.
// Optional strings are "" when absent.
type request struct {
	typ      string
	token    []byte // AUTH: the raw token value (checked by the gate); aliases the payload
	from     string
	to       string
	content  string
	chatID   string
	groupID  string
	username string
	limit    int
	before   store.ID // 0: none
	beforeS  string   // before as sent
}

// Message types.
const (
	tAuth         = "AUTH"
	tDirect       = "ONE_TO_ONE_CHAT"
	tGroup        = "GROUP_CHAT"
	tJoin         = "JOIN_GROUP"
	tLeave        = "LEAVE_GROUP"
	tDirectHist   = "GET_ONE_TO_ONE_HISTORY"
	tGroupHist    = "GET_GROUP_CHAT_HISTORY"
	tDisconnect   = "DISCONNECT"
	errNotAString = " must be a string"
)

// decode parses payload into r, checking the shape of every field its
// type uses. It returns an ERROR text, or "" when r is usable.
func decode(payload []byte, r *request) string {
	f := rawPool.Get().(*raw)
	defer func() { *f = raw{}; rawPool.Put(f) }()
	if err := codec.JSONNoCopy.Unmarshal(payload, f); err != nil {
		if codec.ValidJSON(payload) {
			return "Message must be a JSON object"
		}
		return "Invalid JSON"
	}
	typ, ok := codec.Str(f.Type)
	if !ok || typ == "" {
		return "Missing or invalid type"
	}
	r.typ = typ
	var bad string
	switch typ {
	case tAuth:
		r.token = f.Token
	case tDirect:
		r.from, bad = name(f.From, "from", false, bad)
		r.to, bad = name(f.To, "to", true, bad)
		r.content, bad = content(f.Content, bad)
		r.chatID, bad = chatID(f.ChatID, bad)
	case tGroup:
		r.from, bad = name(f.From, "from", false, bad)
		r.groupID, bad = name(f.GroupID, "groupId", true, bad)
		r.content, bad = content(f.Content, bad)
	case tJoin, tLeave:
		r.groupID, bad = name(f.GroupID, "groupId", true, bad)
		r.username, bad = name(f.Username, "username", false, bad)
	case tDirectHist:
		r.from, bad = name(f.From, "from", false, bad)
		r.to, bad = name(f.To, "to", true, bad)
		r.chatID, bad = chatID(f.ChatID, bad)
		bad = page(f, r, bad)
	case tGroupHist:
		r.groupID, bad = name(f.GroupID, "groupId", true, bad)
		bad = page(f, r, bad)
	}
	return bad
}

func absent(v []byte) bool { return len(v) == 0 || string(v) == "null" }

// name decodes a username or group id; bad carries the first error.
func name(v []byte, field string, required bool, bad string) (string, string) {
	if bad != "" {
		return "", bad
	}
	if absent(v) {
		if required {
			return "", "Missing " + field
		}
		return "", ""
	}
	s, ok := codec.Str(v)
	if !ok || !presence.ValidName(s) {
		return "", "Invalid " + field + ": a string of 1-128 bytes without control characters"
	}
	return s, ""
}

func content(v []byte, bad string) (string, string) {
	if bad != "" {
		return "", bad
	}
	s, ok := codec.Str(v)
	if !ok || s == "" {
		return "", "Missing or invalid content: a non-empty string"
	}
	return s, ""
}

func chatID(v []byte, bad string) (string, string) {
	if bad != "" || absent(v) {
		return "", bad
	}
	s, ok := codec.Str(v)
	if !ok || s == "" || len(s) > MaxChatID {
		return "", "Invalid chatId: a string of 1-256 bytes"
	}
	return s, ""
}

// page decodes limit (default 50, clamped to 200) and before.
func page(f *raw, r *request, bad string) string {
	if bad != "" {
		return bad
	}
	r.limit = DefaultLimit
	if !absent(f.Limit) {
		n, ok := positiveInt(f.Limit)
		if !ok {
			return "Invalid limit: a positive integer"
		}
		r.limit = min(n, MaxLimit)
	}
	if !absent(f.Before) {
		s, ok := codec.Str(f.Before)
		if !ok {
			return "Invalid before: a messageId string"
		}
		r.beforeS = s
		if r.before, ok = store.ParseID(s); !ok {
			return "Unknown message in before: " + s
		}
	}
	return ""
}

// positiveInt parses a JSON integer >= 1 (an over-large one saturates).
func positiveInt(v []byte) (int, bool) {
	if len(v) == 0 || v[0] == '0' || v[0] == '-' {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n < 1<<30 {
			n = n*10 + int(c-'0')
		}
	}
	return n, true
}
