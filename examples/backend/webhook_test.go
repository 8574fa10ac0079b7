package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const secret = "whsec-test-0123456789"

// sig is the v1 signature computed here independently of Sign.
func sig(key string, ts int64, body string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(strconv.FormatInt(ts, 10) + "." + body))
	return hex.EncodeToString(m.Sum(nil))
}

func TestVerify(t *testing.T) {
	now := time.Unix(1_764_931_200, 0)
	v := &Verifier{Secret: []byte(secret), Now: func() time.Time { return now }}
	body := `{"id":"3f9c0a1b2d4e5f60","type":"member.joined","dialect":"party","room":"K7QX","clientId":"alice","node":"n1","time":"2026-12-05T10:40:00.000Z"}`
	ts := now.Unix()
	good := sig(secret, ts, body)
	other := sig("another-secret", ts, body)
	for _, tc := range []struct {
		name      string
		header    string
		ts        string
		body      string
		want      error
		tolerance time.Duration
	}{
		{"valid", "v1=" + good, strconv.FormatInt(ts, 10), body, nil, 0},
		{"valid with spaces", " v1=" + good + " ", strconv.FormatInt(ts, 10), body, nil, 0},
		{"wrong secret", "v1=" + other, strconv.FormatInt(ts, 10), body, ErrMismatch, 0},
		{"tampered body", "v1=" + good, strconv.FormatInt(ts, 10), strings.Replace(body, "alice", "mallory", 1), ErrMismatch, 0},
		{"timestamp changed", "v1=" + good, strconv.FormatInt(ts+1, 10), body, ErrMismatch, 0},
		{"several v1, the second matches", "v1=" + other + ",v1=" + good, strconv.FormatInt(ts, 10), body, nil, 0},
		{"several v1, the first matches", "v1=" + good + ", v1=" + other, strconv.FormatInt(ts, 10), body, nil, 0},
		{"several v1, none matches", "v1=" + other + ",v1=" + strings.Repeat("0", 64), strconv.FormatInt(ts, 10), body, ErrMismatch, 0},
		{"unknown scheme beside v1", "v2=zzz,v1=" + good, strconv.FormatInt(ts, 10), body, nil, 0},
		{"upper-case hex", "v1=" + strings.ToUpper(good), strconv.FormatInt(ts, 10), body, nil, 0},
		{"stale: 5 min 1 s old", "v1=" + sig(secret, ts-301, body), strconv.FormatInt(ts-301, 10), body, ErrStale, 0},
		{"5 min old exactly", "v1=" + sig(secret, ts-300, body), strconv.FormatInt(ts-300, 10), body, nil, 0},
		{"from the future: 5 min 1 s", "v1=" + sig(secret, ts+301, body), strconv.FormatInt(ts+301, 10), body, ErrStale, 0},
		{"tighter tolerance", "v1=" + sig(secret, ts-61, body), strconv.FormatInt(ts-61, 10), body, ErrStale, time.Minute},
		{"no signature header", "", strconv.FormatInt(ts, 10), body, ErrNoSignature, 0},
		{"no timestamp header", "v1=" + good, "", body, ErrNoSignature, 0},
		{"timestamp not a number", "v1=" + good, "yesterday", body, ErrBadTimestamp, 0},
		{"timestamp in milliseconds", "v1=" + good, strconv.FormatInt(ts*1000, 10), body, ErrStale, 0},
		{"negative timestamp", "v1=" + good, "-5", body, ErrBadTimestamp, 0},
		{"malformed: no scheme", good, strconv.FormatInt(ts, 10), body, ErrMalformed, 0},
		{"malformed: v1 not hex", "v1=" + strings.Repeat("g", 64), strconv.FormatInt(ts, 10), body, ErrMalformed, 0},
		{"malformed: v1 too short", "v1=" + good[:62], strconv.FormatInt(ts, 10), body, ErrMalformed, 0},
		{"malformed: only commas", ",,,", strconv.FormatInt(ts, 10), body, ErrMalformed, 0},
		{"malformed: header over the limit", strings.Repeat("v1="+good+",", 70), strconv.FormatInt(ts, 10), body, ErrMalformed, 0},
		{"under the header limit", strings.Repeat("v1="+other+",", 55) + "v1=" + good, strconv.FormatInt(ts, 10), body, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v.Tolerance = tc.tolerance
			if err := v.Verify(tc.header, tc.ts, []byte(tc.body)); !errors.Is(err, tc.want) {
				t.Fatalf("Verify: %v, want %v", err, tc.want)
			}
		})
	}
	if Sign([]byte(secret), ts, []byte(body)) != good {
		t.Fatal("Sign differs from the documented HMAC")
	}
}

func FuzzParseSignatures(f *testing.F) {
	f.Add("v1=" + strings.Repeat("ab", 32))
	f.Add("v1=" + strings.Repeat("ab", 32) + ",v1=" + strings.Repeat("0", 64))
	f.Add("v0=1,v1=,=,,")
	f.Fuzz(func(t *testing.T, h string) {
		sigs, err := ParseSignatures(h)
		if (err == nil) != (len(sigs) > 0) {
			t.Fatalf("%q: %d signatures and %v", h, len(sigs), err)
		}
		for _, s := range sigs {
			if len(s) != sha256.Size {
				t.Fatalf("%q: a signature of %d bytes", h, len(s))
			}
		}
		// Whatever the header, a wrong signature never verifies.
		v := &Verifier{Secret: []byte(secret)}
		now := time.Now().Unix()
		if err := v.Verify(h, strconv.FormatInt(now, 10), []byte("body")); err == nil && !strings.Contains(strings.ToLower(h), sig(secret, now, "body")) {
			t.Fatalf("%q verified without the right signature", h)
		}
	})
}

func TestSeenIsBounded(t *testing.T) {
	s := NewSeen(3)
	for _, tc := range []struct {
		id  string
		new bool
	}{
		{"a", true}, {"b", true}, {"a", false}, {"c", true},
		{"d", true},  // over the cap: "a" is forgotten
		{"a", true},  // so it counts as new again, and "b" goes
		{"c", false}, // still held
		{"b", true},
	} {
		if got := s.Add(tc.id); got != tc.new {
			t.Fatalf("Add(%q) = %v, want %v", tc.id, got, tc.new)
		}
		if len(s.ids) > 3 {
			t.Fatalf("%d ids held, cap 3", len(s.ids))
		}
	}
}

// recorder is a Receiver on a real socket that keeps what it handled.
type recorder struct {
	srv *httptest.Server
	mu  sync.Mutex
	got []Event
}

func newRecorder(t *testing.T, secret string) *recorder {
	r := &recorder{}
	r.srv = httptest.NewServer(&Receiver{
		Verifier: &Verifier{Secret: []byte(secret)},
		Seen:     NewSeen(100),
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
		Handle: func(e Event) {
			r.mu.Lock()
			r.got = append(r.got, e)
			r.mu.Unlock()
		},
	})
	t.Cleanup(r.srv.Close)
	return r
}

// events is a copy of what was handled so far.
func (r *recorder) events() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

// TestReceiver drives the handler over a real socket.
func TestReceiver(t *testing.T) {
	rec := newRecorder(t, secret)
	srv := rec.srv
	post := func(body, id string, ts int64, signature string) int {
		req, _ := http.NewRequest("POST", srv.URL, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if id != "" {
			req.Header.Set("Partyline-Event-Id", id)
		}
		req.Header.Set("Partyline-Timestamp", strconv.FormatInt(ts, 10))
		req.Header.Set("Partyline-Signature", signature)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ts := time.Now().Unix()
	ev := `{"id":"00112233445566778899","type":"room.created","dialect":"party","room":"K7QX","node":"n1","time":"2026-12-05T10:40:00.000Z"}`
	big := `{"id":"1","type":"x","pad":"` + strings.Repeat("p", MaxEventBody) + `"}`
	for _, tc := range []struct {
		name       string
		body, id   string
		ts         int64
		sig        string
		want       int
		handledNow int
	}{
		{"first delivery", ev, "00112233445566778899", ts, "v1=" + sig(secret, ts, ev), 204, 1},
		{"redelivery is acknowledged, not handled", ev, "00112233445566778899", ts + 1, "v1=" + sig(secret, ts+1, ev), 200, 1},
		{"wrong secret", ev, "00112233445566778899", ts, "v1=" + sig("nope", ts, ev), 401, 1},
		{"stale", ev, "00112233445566778899", ts - 600, "v1=" + sig(secret, ts-600, ev), 401, 1},
		{"header id differs from the body", strings.Replace(ev, "0011", "9911", 1), "00112233445566778899", ts, "v1=" + sig(secret, ts, strings.Replace(ev, "0011", "9911", 1)), 400, 1},
		{"signed but not an event", `{"hello":1}`, "", ts, "v1=" + sig(secret, ts, `{"hello":1}`), 400, 1},
		{"body over the limit", big, "", ts, "v1=" + sig(secret, ts, big), 413, 1},
		{"another event, no id header", strings.Replace(ev, "0011", "aa11", 1), "", ts, "v1=" + sig(secret, ts, strings.Replace(ev, "0011", "aa11", 1)), 204, 2},
	} {
		if st := post(tc.body, tc.id, tc.ts, tc.sig); st != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, st, tc.want)
		}
		if n := len(rec.events()); n != tc.handledNow {
			t.Errorf("%s: %d events handled, want %d", tc.name, n, tc.handledNow)
		}
	}
	if got := rec.events(); got[0].Type != "room.created" || got[0].Room != "K7QX" || got[0].Node != "n1" {
		t.Errorf("event %+v", got[0])
	}
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 {
		t.Errorf("GET: %d, want 405", resp.StatusCode)
	}
}
