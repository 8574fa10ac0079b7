package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestHookReceiver(t *testing.T) {
	cases := []struct {
		name, method string
		h            *hookReceiver
		status       int
		body         string
		answered     int64
	}{
		{"approve", http.MethodPost, &hookReceiver{status: 204}, 204, "", 1},
		{"metadata", http.MethodPost, &hookReceiver{status: 200, body: `{"metadata":1}`}, 200, `{"metadata":1}`, 1},
		{"refuse", http.MethodPost, &hookReceiver{status: 403, body: `{"error":"no"}`}, 403, `{"error":"no"}`, 1},
		{"not a POST", http.MethodGet, &hookReceiver{status: 204}, 405, "POST only\n", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(tc.h)
			t.Cleanup(srv.Close)
			req, _ := http.NewRequest(tc.method, srv.URL+"/join", strings.NewReader(`{"clientId":"a"}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.status || string(b) != tc.body || tc.h.n.Load() != tc.answered {
				t.Fatalf("%d %q, answered %d", resp.StatusCode, b, tc.h.n.Load())
			}
		})
	}
}

func TestHookReceiverFlags(t *testing.T) {
	for _, args := range [][]string{{"--listen", "0.0.0.0:9100"}, {"--listen", "nohost"}, {"--status", "42"}, {"--delay", "-1s"}} {
		if err := hookReceiverCmd(context.Background(), args); err == nil {
			t.Fatalf("%v accepted", args)
		}
	}
}
