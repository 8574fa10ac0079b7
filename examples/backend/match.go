package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The matchmaker: POST /match {"players": n} creates an empty party room
// for n players through partyline's rooms API (POST /api/rooms with the
// API key) and answers where to play:
//
//	201 {"code":"K7QX","url":"ws://127.0.0.1:8080/party","maxClients":4}
//
// Each player then connects to url and sends
// {"type":"join","clientId":...,"room":"K7QX"}. The room waits
// --party-empty-room-ttl (60s by default) for its first player.

// MaxPlayers bounds a match here; partyline refuses more than its own
// --party-max-clients anyway (422).
const MaxPlayers = 1000

// MaxMatchBody is the largest POST /match body (413 past it).
const MaxMatchBody = 4 << 10

// Matchmaker creates rooms on one partyline server.
type Matchmaker struct {
	API     string       // partyline's HTTP listener, e.g. http://127.0.0.1:8081
	Key     string       // its --api-key ("": none; a loopback server answers without)
	WS      string       // the WebSocket base players connect to, e.g. ws://127.0.0.1:8080
	Dialect string       // "party" (default) or "party-v2"
	Client  *http.Client // nil: one with a 5 s timeout
}

// Match is the answer to POST /match.
type Match struct {
	Code       string `json:"code"`
	URL        string `json:"url"`
	MaxClients int    `json:"maxClients"`
}

// partylineError is a refusal from partyline, with its status and text.
type partylineError struct {
	Status int
	Msg    string
}

func (e *partylineError) Error() string {
	return "partyline answered " + strconv.Itoa(e.Status) + ": " + e.Msg
}

// Create asks partyline for a room of players.
func (m *Matchmaker) Create(ctx context.Context, players int) (Match, error) {
	dialect := m.Dialect
	if dialect == "" {
		dialect = "party"
	}
	body, _ := json.Marshal(map[string]any{"dialect": dialect, "maxClients": players})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(m.API, "/")+"/api/rooms", bytes.NewReader(body))
	if err != nil {
		return Match{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	if m.Key != "" {
		req.Header.Set("Authorization", "Bearer "+m.Key)
	}
	c := m.Client
	if c == nil {
		c = &http.Client{Timeout: 5 * time.Second}
	}
	resp, err := c.Do(req)
	if err != nil {
		return Match{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return Match{}, err
	}
	if resp.StatusCode != http.StatusCreated {
		var e struct{ Error string }
		if json.Unmarshal(raw, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(raw))
		}
		return Match{}, &partylineError{Status: resp.StatusCode, Msg: e.Error}
	}
	var room struct {
		Code       string  `json:"code"`
		MaxClients float64 `json:"maxClients"`
	}
	if err := json.Unmarshal(raw, &room); err != nil || room.Code == "" {
		return Match{}, fmt.Errorf("partyline's answer has no room code: %q", raw)
	}
	return Match{Code: room.Code, URL: strings.TrimSuffix(m.WS, "/") + "/" + dialect, MaxClients: int(room.MaxClients)}, nil
}

// ServeHTTP is POST /match.
func (m *Matchmaker) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		httpError(w, http.StatusMethodNotAllowed, "POST only")
		return
	}
	var req struct {
		Players int `json:"players"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, MaxMatchBody))
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpError(w, http.StatusRequestEntityTooLarge, "body over "+strconv.Itoa(MaxMatchBody)+" bytes")
			return
		}
		httpError(w, http.StatusBadRequest, "body must be {\"players\": n}: "+err.Error())
		return
	}
	if req.Players < 1 || req.Players > MaxPlayers {
		httpError(w, http.StatusUnprocessableEntity, "players must be from 1 to "+strconv.Itoa(MaxPlayers))
		return
	}
	match, err := m.Create(r.Context(), req.Players)
	var pe *partylineError
	switch {
	case err == nil:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(match)
	case errors.As(err, &pe) && pe.Status == http.StatusUnprocessableEntity:
		httpError(w, http.StatusUnprocessableEntity, err.Error()) // e.g. more players than --party-max-clients
	case errors.As(err, &pe) && pe.Status == http.StatusServiceUnavailable:
		w.Header().Set("Retry-After", "1")
		httpError(w, http.StatusServiceUnavailable, err.Error()) // full or draining: try again
	default:
		httpError(w, http.StatusBadGateway, "cannot create a room: "+err.Error())
	}
}
