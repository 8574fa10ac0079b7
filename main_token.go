package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"partyline/auth"
)

// tokenMain is `partyline token`: it prints an HS256 token for trying out
// /chat and /presence, signed with --jwt-secret (or PARTYLINE_JWT_SECRET).
func tokenMain(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("partyline token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: partyline token --user NAME [--ttl 1h] [--jwt-secret S]\n\nPrints an HS256 token for the chat and presence dialects.\n\n")
		fs.PrintDefaults()
	}
	user := fs.String("user", "", "username (the token's username and sub claims)")
	ttl := fs.Duration("ttl", time.Hour, "lifetime; 0 for a token without exp")
	secret := fs.String("jwt-secret", getenv("PARTYLINE_JWT_SECRET"), "HMAC secret (default $PARTYLINE_JWT_SECRET)")
	issuer := fs.String("jwt-issuer", getenv("PARTYLINE_JWT_ISSUER"), "iss claim, if set")
	audience := fs.String("jwt-audience", getenv("PARTYLINE_JWT_AUDIENCE"), "aud claim, if set")
	claim := fs.String("jwt-username-claim", getenv("PARTYLINE_JWT_USERNAME_CLAIM"), "also put the username in this claim")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	fail := func(msg string) int {
		fmt.Fprintln(stderr, "partyline token:", msg)
		return 2
	}
	switch {
	case fs.NArg() > 0:
		return fail(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	case *user == "":
		return fail("--user is required")
	case *secret == "":
		return fail("--jwt-secret or PARTYLINE_JWT_SECRET is required")
	case *ttl < 0:
		return fail("--ttl must not be negative")
	}
	now := time.Now()
	claims := map[string]any{"username": *user, "sub": *user, "iat": now.Unix()}
	if *ttl > 0 {
		claims["exp"] = now.Add(*ttl).Unix()
	}
	if *issuer != "" {
		claims["iss"] = *issuer
	}
	if *audience != "" {
		claims["aud"] = *audience
	}
	if *claim != "" {
		claims[*claim] = *user
	}
	tok, err := auth.SignHS256([]byte(*secret), claims)
	if err != nil {
		return fail(err.Error())
	}
	fmt.Fprintln(stdout, tok)
	return 0
}
