package chat

import (
	"encoding/json"
	"strings"
	"testing"

	"partyline/dialect/presence"
)

var knownErrors = []string{
	"Invalid JSON", "Message must be a JSON object", "Missing or invalid type", "Missing ",
	"Invalid ", "Missing or invalid content", "Unknown message in before: ",
}

// FuzzDecode: decode never panics, rejects with one of its error texts,
// and whatever it accepts has the shape its type promises.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"AUTH","token":"a.b.c"}`,
		`{"type":"ONE_TO_ONE_CHAT","from":"alice","to":"bob","content":"Hello there!","chatId":"chat_123"}`,
		`{"type":"GROUP_CHAT","from":"jane","groupId":"group_456","content":"Hello everyone!"}`,
		`{"type":"JOIN_GROUP","groupId":"g1","username":"alice"}`,
		`{"type":"LEAVE_GROUP","groupId":"g1"}`,
		`{"type":"GET_ONE_TO_ONE_HISTORY","from":"a","to":"b","chatId":"c","limit":5,"before":"038G0HHTCG000"}`,
		`{"type":"GET_GROUP_CHAT_HISTORY","groupId":"g","limit":1000}`,
		`{"type":"DISCONNECT"}`,
		`{"type":"ONE_TO_ONE_CHAT","to":"b\u0000","content":"\ud83d\ude00"}`,
		`{"type":"GET_GROUP_CHAT_HISTORY","groupId":"g","limit":-1,"before":null}`,
		`[1]`, `{`, `"x"`, `{"type":null}`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, payload []byte) {
		var r request
		bad := decode(payload, &r)
		if bad != "" {
			for _, k := range knownErrors {
				if strings.HasPrefix(bad, k) {
					return
				}
			}
			t.Fatalf("unexpected error text %q", bad)
		}
		if !json.Valid(payload) {
			t.Fatalf("accepted invalid JSON %q", payload)
		}
		if r.typ == "" {
			t.Fatal("accepted without a type")
		}
		okName := func(s string, required bool) bool {
			return (s == "" && !required) || presence.ValidName(s)
		}
		switch r.typ {
		case tDirect:
			if !okName(r.from, false) || !okName(r.to, true) || r.content == "" || len(r.chatID) > MaxChatID {
				t.Fatalf("bad direct message %+v", r)
			}
		case tGroup:
			if !okName(r.from, false) || !okName(r.groupID, true) || r.content == "" {
				t.Fatalf("bad group message %+v", r)
			}
		case tJoin, tLeave:
			if !okName(r.groupID, true) || !okName(r.username, false) {
				t.Fatalf("bad membership %+v", r)
			}
		case tDirectHist, tGroupHist:
			if r.limit < 1 || r.limit > MaxLimit || (r.before == 0) != (r.beforeS == "") {
				t.Fatalf("bad page %+v", r)
			}
			if r.before != 0 && r.before.String() != r.beforeS {
				t.Fatalf("before %q parsed to %v", r.beforeS, r.before)
			}
		}
	})
}
