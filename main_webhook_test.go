package main

import (
	"slices"
	"strings"
	"testing"
	"time"

	"partyline/server"
)

func TestParseWebhookFlags(t *testing.T) {
	cases := []struct {
		name  string
		args  []string
		env   map[string]string
		check func(t *testing.T, c server.Config)
	}{
		{"off by default", nil, nil, func(t *testing.T, c server.Config) {
			w := c.Webhook
			if w.Enabled() || w.Queue != 10_000 || w.Timeout != 5*time.Second || w.MaxAttempts != 12 || w.MaxAge != 10*time.Minute || w.Drain != 5*time.Second {
				t.Fatalf("%+v", w)
			}
		}},
		{"flags, repeated", []string{"--webhook-url", "http://127.0.0.1:9000/hook", "--webhook-url", "https://hooks.example.com/p?x=1",
			"--webhook-secret", "old", "--webhook-secret", "new", "--webhook-queue", "50", "--webhook-timeout", "2s",
			"--webhook-max-attempts", "3", "--webhook-max-age", "1m", "--webhook-drain", "0s"}, nil, func(t *testing.T, c server.Config) {
			w := c.Webhook
			if !slices.Equal(w.URLs, []string{"http://127.0.0.1:9000/hook", "https://hooks.example.com/p?x=1"}) || !slices.Equal(w.Secrets, []string{"old", "new"}) {
				t.Fatalf("urls %q secrets %q", w.URLs, w.Secrets)
			}
			if w.Queue != 50 || w.Timeout != 2*time.Second || w.MaxAttempts != 3 || w.MaxAge != time.Minute || w.Drain != 0 {
				t.Fatalf("%+v", w)
			}
		}},
		{"env, comma-separated", nil, map[string]string{"PARTYLINE_WEBHOOK_URL": "http://a.test/h,http://b.test/h",
			"PARTYLINE_WEBHOOK_SECRET": "k", "PARTYLINE_WEBHOOK_QUEUE": "7"}, func(t *testing.T, c server.Config) {
			w := c.Webhook
			if !slices.Equal(w.URLs, []string{"http://a.test/h", "http://b.test/h"}) || !slices.Equal(w.Secrets, []string{"k"}) || w.Queue != 7 {
				t.Fatalf("%+v", w)
			}
		}},
		{"flag beats env", []string{"--webhook-url", "http://flag.test/"}, map[string]string{"PARTYLINE_WEBHOOK_URL": "http://env.test/",
			"PARTYLINE_WEBHOOK_SECRET": "k"}, func(t *testing.T, c server.Config) {
			if !slices.Equal(c.Webhook.URLs, []string{"http://flag.test/"}) {
				t.Fatalf("%q", c.Webhook.URLs)
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parseConfig(tc.args, envOf(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, c)
		})
	}
}

func TestWebhookFlagRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"url without secret", []string{"--webhook-url", "http://127.0.0.1/h"}, nil, "needs --webhook-secret"},
		{"env url without secret", nil, map[string]string{"PARTYLINE_WEBHOOK_URL": "http://127.0.0.1/h"}, "needs --webhook-secret"},
		{"not http", []string{"--webhook-url", "ws://127.0.0.1/h", "--webhook-secret", "k"}, nil, "http:// or https://"},
		{"no scheme", []string{"--webhook-url", "127.0.0.1:9000/h", "--webhook-secret", "k"}, nil, "--webhook-url"},
		{"no host", []string{"--webhook-url", "https:///h", "--webhook-secret", "k"}, nil, "no host"},
		{"empty secret", []string{"--webhook-url", "http://h.test/", "--webhook-secret", ""}, nil, "empty secret"},
		{"negative queue", []string{"--webhook-queue", "-1"}, nil, "webhook-queue"},
		{"negative timeout", []string{"--webhook-timeout", "-1s"}, nil, "webhook-timeout"},
		{"negative drain", []string{"--webhook-drain", "-1s"}, nil, "webhook-drain"},
		{"bad attempts", []string{"--webhook-max-attempts", "many"}, nil, "webhook-max-attempts"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := parseConfig(c.args, envOf(c.env))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error %v, want one mentioning %q", err, c.want)
			}
		})
	}
}
