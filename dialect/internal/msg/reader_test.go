package msg

import (
	"testing"

	"github.com/bytedance/sonic"

	"partyline/codec"
	"partyline/routing"
)

type readReq struct {
	Type sonic.NoCopyRawMessage `json:"type"`
	Data sonic.NoCopyRawMessage `json:"data"`
}

var testReader = Reader[readReq]{Binary: "binary", NotObject: "not an object", Invalid: "invalid"}

func TestReaderRead(t *testing.T) {
	for _, tc := range []struct {
		name string
		kind codec.Kind
		in   string
		fail string // "" when the request is returned
		typ  string
	}{
		{"object", codec.KindText, `{"type":"x","data":[1]}`, "", `"x"`},
		{"binary, even of valid JSON", codec.KindBinary, `{"type":"x"}`, "binary", ""},
		{"array", codec.KindText, `[1]`, "not an object", ""},
		{"null", codec.KindText, `null`, "not an object", ""},
		{"truncated", codec.KindText, `{"type":`, "invalid", ""},
		{"empty", codec.KindText, ``, "invalid", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var failed []string
			req := testReader.Read(tc.kind, []byte(tc.in), func(text string) { failed = append(failed, text) })
			switch {
			case tc.fail == "" && (req == nil || len(failed) != 0):
				t.Fatalf("got request %v and failures %q, want the request alone", req, failed)
			case tc.fail != "" && (req != nil || len(failed) != 1 || failed[0] != tc.fail):
				t.Fatalf("got request %v and failures %q, want no request and one failure %q", req, failed, tc.fail)
			}
			if req != nil {
				if string(req.Type) != tc.typ {
					t.Fatalf("type %q, want %q", req.Type, tc.typ)
				}
				testReader.Done(req)
			}
		})
	}
}

// TestReaderDoneClears: a pooled request comes back empty, so that a
// field one message set is not seen by the next.
func TestReaderDoneClears(t *testing.T) {
	for i := 0; i < 100; i++ {
		req := testReader.Read(codec.KindText, []byte(`{"type":"x","data":1}`), func(string) { t.Fatal("failed") })
		testReader.Done(req)
		req = testReader.Read(codec.KindText, []byte(`{"type":"y"}`), func(string) { t.Fatal("failed") })
		if req.Data != nil {
			t.Fatalf("a reused request kept data %q from the previous message", req.Data)
		}
		testReader.Done(req)
	}
}

type frames struct{ got []string }

func (f *frames) Send(fr *routing.Frame, _ bool) bool {
	f.got = append(f.got, string(fr.Payload()))
	return true
}

func TestSendError(t *testing.T) {
	var f frames
	SendError(&f, "bad \"quote\"\n")
	if len(f.got) != 1 || f.got[0] != `{"type":"error","message":"bad \"quote\"\n"}` {
		t.Fatalf("sent %q", f.got)
	}
}
