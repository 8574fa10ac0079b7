package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"partyline/auth"
)

func TestTokenSubcommand(t *testing.T) {
	env := map[string]string{"PARTYLINE_JWT_SECRET": "from-env-secret"}
	getenv := func(k string) string { return env[k] }
	var out, errb bytes.Buffer
	if code := tokenMain([]string{"--user", "alice", "--ttl", "2m"}, getenv, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	v, err := auth.New(auth.Config{Secret: "from-env-secret"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(strings.TrimSpace(out.String()))
	if err != nil || c.Username != "alice" {
		t.Fatalf("verify: %+v %v", c, err)
	}
	if d := time.Until(c.Expires); d < time.Minute || d > 2*time.Minute+time.Second {
		t.Fatalf("expires in %v, want about 2m", d)
	}
	for _, args := range [][]string{{}, {"--user", "a", "--jwt-secret", ""}, {"--user", "a", "extra"}, {"--user", "a", "--ttl", "-1s"}} {
		out.Reset()
		errb.Reset()
		noSecret := func(string) string { return "" }
		if code := tokenMain(args, noSecret, &out, &errb); code != 2 || out.Len() != 0 {
			t.Fatalf("%q: exit %d, output %q", args, code, out.String())
		}
	}
}

func TestChatFlags(t *testing.T) {
	env := map[string]string{"PARTYLINE_JWT_LEEWAY": "2s", "PARTYLINE_JWT_AUDIENCE": "chat"}
	cfg, err := parseConfig([]string{"--jwt-secret", "s", "--data-dir", "/tmp/x", "--auth-timeout", "3s",
		"--presence-grace", "0s", "--jwt-username-claim", "preferred_username", "--jwt-issuer", "idp"},
		func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	j, p := cfg.JWT, cfg.Presence
	if j.Secret != "s" || j.Leeway != 2*time.Second || j.Audience != "chat" || j.Issuer != "idp" || j.UsernameClaim != "preferred_username" {
		t.Fatalf("jwt config %+v", j)
	}
	if cfg.DataDir != "/tmp/x" || p.AuthTimeout != 3*time.Second || p.Grace != 0 {
		t.Fatalf("data dir %q, presence config %+v", cfg.DataDir, p)
	}
	d, err := parseConfig(nil, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if d.DataDir != "./data" || d.JWT.Leeway != 5*time.Second || d.JWT.UsernameClaim != "username" || d.Presence.AuthTimeout != 10*time.Second || d.Presence.Grace != 3*time.Second {
		t.Fatalf("defaults: %q %+v %+v", d.DataDir, d.JWT, d.Presence)
	}
	if _, err := parseConfig([]string{"--presence-grace", "-1s"}, func(string) (string, bool) { return "", false }); err == nil {
		t.Fatal("negative grace accepted")
	}
}
