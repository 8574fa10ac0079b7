package party

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"partyline/codec"
	"partyline/dialect"
	"partyline/dialect/internal/workers"
	"partyline/internal/security"
)

// The join hook (--party-auth-url, docs/api.md "Join hook"): before a
// create or join completes, the server POSTs what it knows of the joiner
// to the game's backend, which approves (2xx, optionally with metadata
// for the member), refuses (4xx with {"error": text}) or fails (timeout,
// connection error, anything else: "authorization unavailable").
//
// The call runs on the hook's bounded pool, never on an event loop, and
// comes back through Conn.Do. Meanwhile the session holds its later
// messages in its gate (as cluster mode does for its registry round
// trips), so one hook call is in flight per connection and a pipelined
// join + send keeps its order. An approval re-reads the create or join
// and handles it as if it had just arrived, with every check made again
// on the loop: a room that filled up or closed while the hook ran is
// refused as it would be without a hook.

// errAuthUnavailable is the refusal when the hook cannot decide.
const errAuthUnavailable = "authorization unavailable"

// errJoinRefused is the refusal of a 4xx without an error text.
const errJoinRefused = "join refused"

const (
	hookBodyMax  = 64 << 10 // bytes of a hook's answer read
	hookErrorMax = 256      // bytes of a refusal's text kept
)

// hookVerdict is the hook's answer, parsed.
type hookVerdict struct {
	meta        []byte // 2xx: the member's metadata (compact JSON), nil: none
	refused     string // 4xx: the refusal text
	unavailable string // why no decision came ("" when one did): the log's cause
}

// parseHookResponse reads the hook's status and body (at most
// hookBodyMax bytes of it).
func parseHookResponse(status int, body []byte) hookVerdict {
	switch {
	case status >= 200 && status < 300:
		body = bytes.TrimSpace(body)
		if len(body) == 0 {
			return hookVerdict{}
		}
		var v struct {
			Metadata json.RawMessage `json:"metadata"`
		}
		if body[0] != '{' || json.Unmarshal(body, &v) != nil {
			return hookVerdict{unavailable: "2xx body is not a JSON object"}
		}
		if len(v.Metadata) == 0 || string(v.Metadata) == "null" {
			return hookVerdict{}
		}
		var b bytes.Buffer
		if json.Compact(&b, v.Metadata) != nil {
			return hookVerdict{unavailable: "metadata is not JSON"}
		}
		if b.Len() > dialect.MaxMetadata {
			return hookVerdict{unavailable: "metadata over 1024 bytes"}
		}
		return hookVerdict{meta: b.Bytes()}
	case status >= 400 && status < 500:
		var v struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal(body, &v)
		text := strings.TrimSpace(strings.ToValidUTF8(v.Error, "\uFFFD"))
		if len(text) > hookErrorMax {
			n := hookErrorMax
			for n > 0 && !utf8.RuneStart(text[n]) {
				n--
			}
			text = text[:n]
		}
		if text == "" {
			text = errJoinRefused
		}
		return hookVerdict{refused: text}
	}
	return hookVerdict{unavailable: "status " + itoa(status)}
}

// joinHook calls --party-auth-url on a pool of at most AuthConcurrency
// goroutines with as many calls waiting. Any goroutine.
type joinHook struct {
	url     string
	timeout time.Duration
	client  *http.Client
	pool    *workers.Pool
}

func newJoinHook(cfg *Config) *joinHook {
	if cfg.AuthURL == "" {
		return nil
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = cfg.AuthConcurrency // every worker keeps its connection
	tr.MaxIdleConns = cfg.AuthConcurrency
	return &joinHook{url: cfg.AuthURL, timeout: cfg.AuthTimeout, pool: workers.New(cfg.AuthConcurrency, cfg.AuthConcurrency),
		client: &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is no decision
		}}}
}

// call POSTs body and returns the verdict. Worker.
func (h *joinHook) call(ctx context.Context, body []byte) hookVerdict {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(body))
	if err != nil {
		return hookVerdict{unavailable: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "partyline")
	resp, err := h.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return hookVerdict{unavailable: "timeout"}
		}
		return hookVerdict{unavailable: err.Error()}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, hookBodyMax+1))
	if err != nil {
		return hookVerdict{unavailable: "reading the answer: " + err.Error()}
	}
	if len(b) > hookBodyMax && resp.StatusCode < 300 {
		return hookVerdict{unavailable: "answer over 64 KiB"}
	}
	return parseHookResponse(resp.StatusCode, b)
}

// hookRequest is the JSON the hook receives (docs/api.md "Join hook"):
// room is null for a create (its code is drawn after the approval).
func (d *Dialect) hookRequest(action, id, code string, req *dialect.Request) []byte {
	b := make([]byte, 0, 256+len(req.RawQuery)+len(req.Authorization)+len(req.Cookie))
	b = append(b, `{"clientId":`...)
	b = codec.AppendString(b, id)
	b = append(b, `,"room":`...)
	if code == "" {
		b = append(b, "null"...)
	} else {
		b = codec.AppendString(b, code)
	}
	b = append(b, `,"action":"`...)
	b = append(b, action...)
	b = append(b, `","dialect":`...)
	b = codec.AppendString(b, d.prof.name)
	b = append(b, `,"remoteAddr":`...)
	b = codec.AppendString(b, req.RemoteAddr)
	b = append(b, `,"query":{`...)
	q, _ := url.ParseQuery(req.RawQuery) // what parses; a malformed pair is left out
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = codec.AppendString(b, k)
		b = append(b, ':')
		b = codec.AppendString(b, q[k][0]) // a repeated key keeps its first value
	}
	b = append(b, `},"headers":{`...)
	n := 0
	for _, h := range [...]struct{ name, v string }{{"Origin", req.Origin}, {"User-Agent", req.UserAgent},
		{"Authorization", req.Authorization}, {"Cookie", req.Cookie}} {
		if h.v == "" {
			continue
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		b = codec.AppendString(b, h.name)
		b = append(b, ':')
		b = codec.AppendString(b, h.v)
	}
	return append(b, "}}"...)
}

// hookCall is a session's hook call in flight.
type hookCall struct {
	cancel context.CancelFunc
}

// mustAuthorize reports whether a create or join must go to the hook
// first: one is configured and this is not the approved request's
// second reading. Loop.
func (s *session) mustAuthorize() bool { return s.d.hook != nil && !s.authed }

// authorize sends the create or join being handled (s.raw) to the hook;
// code is the room of a join, "" for a create. Loop.
func (s *session) authorize(action, id, code string) {
	h := s.d.hook
	body := s.d.hookRequest(action, id, code, s.c.Request())
	raw := slices.Clone(s.raw)
	ctx, cancel := context.WithTimeout(context.Background(), h.timeout) // the queue's wait counts
	call := &hookCall{cancel: cancel}
	c := s.c
	s.hook = call
	s.pend.gate.Close()
	if !h.pool.Go(func() {
		v := h.call(ctx, body)
		cancel()
		c.Do(func() { s.authorized(call, v, raw) })
	}) {
		cancel()
		s.hook = nil
		security.Record("party_auth_busy", "dialect", s.d.prof.name)
		s.fail(errAuthUnavailable)
		s.pend.gate.Open(s.OnMessage) // nothing held yet: opens it again
	}
}

// authorized finishes a hook call on the loop: a refusal is answered, an
// approval handles the create or join again, checks and all, with the
// metadata for the member; then the messages held meanwhile are handled.
func (s *session) authorized(call *hookCall, v hookVerdict, raw []byte) {
	if s.hook != call { // the connection closed meanwhile
		return
	}
	s.hook = nil
	switch {
	case v.unavailable != "":
		security.Record("party_auth_unavailable", "dialect", s.d.prof.name, "cause", v.unavailable)
		s.fail(errAuthUnavailable)
	case v.refused != "":
		security.Record("party_auth_refused", "dialect", s.d.prof.name)
		s.joinFailed(v.refused)
	default:
		s.authed, s.grant = true, v.meta
		if req := reqs.Read(codec.KindText, raw, s.fail); req != nil {
			s.dispatch(req)
			reqs.Done(req)
		}
		s.authed, s.grant = false, nil
	}
	if s.pend.op == nil && s.hook == nil && s.pend.gate.Busy() { // no cluster operation took over the gate
		s.pend.gate.Open(s.OnMessage)
	}
}

// closeHook runs from OnClose: a call in flight is abandoned (its answer
// is dropped; nothing was joined yet).
func (s *session) closeHook() {
	if s.hook != nil {
		s.hook.cancel()
		s.hook = nil
	}
}
