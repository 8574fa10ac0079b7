package chat_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"partyline/auth/authtest"
	"partyline/dialect/chat/chattest"
	"partyline/internal/testutil"
	"partyline/server"
)

// authFails sends AUTH with tok and expects ERROR (mentioning want) and a
// 4401 close.
func authFails(t *testing.T, e *chattest.Env, path, tok, want string) {
	t.Helper()
	c := e.Dial(t, path)
	c.Send(map[string]any{"type": "AUTH", "token": tok})
	chattest.ExpectError(t, c, want)
	c.ExpectClose(4401)
}

// TestTokenAlgorithms authenticates over real sockets with a token of each
// algorithm against a server configured with the matching key.
func TestTokenAlgorithms(t *testing.T) {
	t.Parallel()
	k := authtest.Shared(t)
	claims := authtest.Claims("alice", time.Hour)
	sign := func(m jwt.SigningMethod, key any, kid string) string { return authtest.Sign(t, m, key, claims, kid) }

	t.Run("HMAC", func(t *testing.T) {
		t.Parallel()
		e := chattest.Start(t, nil)
		for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
			e.LoginWith(t, "/chat", "alice", sign(m, []byte(chattest.Secret), ""))
		}
		// Rejected: alg none, an expired token, garbage, a foreign RSA token.
		authFails(t, e, "/chat", authtest.Unsigned(t, claims), `"none" not accepted`)
		authFails(t, e, "/chat", authtest.Sign(t, jwt.SigningMethodHS256, []byte(chattest.Secret), authtest.Claims("alice", -time.Minute), ""), "expired")
		authFails(t, e, "/presence", "garbage", "malformed")
		authFails(t, e, "/chat", sign(jwt.SigningMethodRS256, k.RSA, ""), `"RS256" not accepted`)
	})
	for _, tc := range []struct {
		m         jwt.SigningMethod
		priv, pub any
	}{
		{jwt.SigningMethodRS256, k.RSA, &k.RSA.PublicKey},
		{jwt.SigningMethodES256, k.EC, &k.EC.PublicKey},
		{jwt.SigningMethodEdDSA, k.Ed, k.Ed.Public()},
	} {
		t.Run(tc.m.Alg(), func(t *testing.T) {
			t.Parallel()
			pemFile := authtest.WritePEM(t, tc.pub)
			e := chattest.Start(t, func(c *server.Config) { c.JWT.Secret, c.JWT.PublicKeyFile = "", pemFile })
			e.LoginWith(t, "/chat", "alice", sign(tc.m, tc.priv, ""))
			e.LoginWith(t, "/presence", "alice", sign(tc.m, tc.priv, ""))
			// Algorithm confusion: HS256 keyed with the public key's PEM.
			authFails(t, e, "/chat", sign(jwt.SigningMethodHS256, authtest.PublicPEM(t, tc.pub), ""), `"HS256" not accepted`)
		})
	}
	t.Run("JWKS", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "jwks.json")
		authtest.WriteJWKS(t, path,
			authtest.JWK{Kid: "k1", Pub: &k.RSA.PublicKey, Alg: "RS256"},
			authtest.JWK{Kid: "k2", Pub: &k.EC.PublicKey})
		e := chattest.Start(t, func(c *server.Config) { c.JWT.Secret, c.JWT.JWKSFile = "", path })
		e.LoginWith(t, "/chat", "alice", sign(jwt.SigningMethodRS256, k.RSA, "k1"))
		e.LoginWith(t, "/chat", "alice", sign(jwt.SigningMethodES256, k.EC, "k2"))
		authFails(t, e, "/chat", sign(jwt.SigningMethodRS256, k.RSA2, "k3"), "unknown key id")
		// Rotation: k3 added, k1 removed.
		authtest.WriteJWKS(t, path,
			authtest.JWK{Kid: "k3", Pub: &k.RSA2.PublicKey},
			authtest.JWK{Kid: "k2", Pub: &k.EC.PublicKey})
		e.LoginWith(t, "/chat", "alice", sign(jwt.SigningMethodRS256, k.RSA2, "k3"))
		authFails(t, e, "/chat", sign(jwt.SigningMethodRS256, k.RSA, "k1"), "unknown key id")
	})
	t.Run("issuer and audience", func(t *testing.T) {
		t.Parallel()
		e := chattest.Start(t, func(c *server.Config) { c.JWT.Issuer, c.JWT.Audience = "idp", "chat" })
		good := authtest.Claims("alice", time.Hour)
		good["iss"], good["aud"] = "idp", "chat"
		e.LoginWith(t, "/chat", "alice", authtest.Sign(t, jwt.SigningMethodHS256, []byte(chattest.Secret), good, ""))
		bad := authtest.Claims("alice", time.Hour)
		bad["iss"], bad["aud"] = "other", "chat"
		authFails(t, e, "/chat", authtest.Sign(t, jwt.SigningMethodHS256, []byte(chattest.Secret), bad, ""), "issuer")
		bad["iss"], bad["aud"] = "idp", "other"
		authFails(t, e, "/chat", authtest.Sign(t, jwt.SigningMethodHS256, []byte(chattest.Secret), bad, ""), "audience")
	})
}

// TestHandshakeToken: a valid token in the handshake authenticates at once
// (SUCCESS is the first message); an invalid one is refused with 401.
func TestHandshakeToken(t *testing.T) {
	t.Parallel()
	e := chattest.Start(t, nil)
	tok := chattest.Token(t, "alice", time.Hour)
	for _, path := range []string{"/chat", "/presence"} {
		c, err := e.DialHeader(t, path, http.Header{"Authorization": {"Bearer " + tok}})
		if err != nil {
			t.Fatalf("%s bearer: %v", path, err)
		}
		chattest.ExpectSuccess(t, c, "Authenticated as alice")
		c = e.Dial(t, path+"?token="+tok)
		chattest.ExpectSuccess(t, c, "Authenticated as alice")
		// Authenticated: a request works right away.
		c.Send(`{"type":"NOPE"}`)
		chattest.ExpectError(t, c, "unknown message type")

		if _, err := e.DialHeader(t, path, http.Header{"Authorization": {"Bearer nope"}}); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
			t.Fatalf("%s bad bearer: %v, want HTTP 401", path, err)
		}
		if _, err := testutil.TryDial(t, e.URL(path+"?token="+chattest.Token(t, "alice", -time.Hour)), nil); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
			t.Fatalf("%s expired query token: %v, want HTTP 401", path, err)
		}
	}
}

func TestAuthFlow(t *testing.T) {
	t.Parallel()
	e := chattest.Start(t, func(c *server.Config) {
		c.Presence.AuthTimeout = 300 * time.Millisecond
		c.JWT.Leeway = 0
	})

	t.Run("not authenticated, then timeout", func(t *testing.T) {
		t.Parallel()
		c := e.Dial(t, "/chat")
		c.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "from": "a", "to": "b", "content": "x"})
		chattest.ExpectError(t, c, "Not authenticated")
		c.Send(`{"type":"GET_GROUP_CHAT_HISTORY","groupId":"g"}`)
		chattest.ExpectError(t, c, "Not authenticated")
		start := time.Now()
		chattest.ExpectError(t, c, "Authentication timeout")
		c.ExpectClose(4408)
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("timeout after %v", d)
		}
	})
	t.Run("presence timeout", func(t *testing.T) {
		t.Parallel()
		c := e.Dial(t, "/presence")
		chattest.ExpectError(t, c, "Authentication timeout")
		c.ExpectClose(4408)
	})
	t.Run("AUTH without a token string", func(t *testing.T) {
		t.Parallel()
		c := e.Dial(t, "/chat")
		c.Send(`{"type":"AUTH","token":42}`)
		chattest.ExpectError(t, c, "Authentication failed")
		c.ExpectClose(4401)
	})
	t.Run("expiry closes", func(t *testing.T) {
		t.Parallel()
		c := e.LoginWith(t, "/chat", "alice", chattest.Token(t, "alice", time.Second))
		chattest.ExpectError(t, c, "Token expired")
		c.ExpectClose(4401)
	})
	t.Run("refresh keeps the connection", func(t *testing.T) {
		t.Parallel()
		short := chattest.Token(t, "bob", time.Second)
		c := e.LoginWith(t, "/chat", "bob", short)
		witness := e.LoginWith(t, "/chat", "bob", short) // the same expiry, not refreshed
		c.Send(map[string]any{"type": "AUTH", "token": chattest.Token(t, "bob", time.Hour)})
		chattest.ExpectSuccess(t, c, "Authenticated as bob")
		// The witness's close shows the first token's expiry has passed on
		// the server; had the refresh not taken, c's would come with it.
		chattest.ExpectError(t, witness, "Token expired")
		witness.ExpectClose(4401)
		c.Send(`{"type":"NOPE"}`)
		chattest.ExpectError(t, c, "Unknown message type")
	})
	t.Run("another user's token", func(t *testing.T) {
		t.Parallel()
		c := e.Login(t, "/chat", "carol")
		c.Send(map[string]any{"type": "AUTH", "token": chattest.Token(t, "mallory", time.Hour)})
		chattest.ExpectError(t, c, "authenticated as carol")
		// Still carol's: sending as carol works, as mallory does not.
		c.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "from": "mallory", "to": "x", "content": "hi"})
		chattest.ExpectError(t, c, "must be the authenticated user (carol)")
		c.Send(map[string]any{"type": "ONE_TO_ONE_CHAT", "from": "carol", "to": "x", "content": "hi"})
		chattest.ExpectSuccess(t, c, "Message sent")
	})
	t.Run("messages right behind AUTH are served as authenticated", func(t *testing.T) {
		t.Parallel()
		c := e.Dial(t, "/chat")
		c.Send(map[string]any{"type": "AUTH", "token": chattest.Token(t, "dave", time.Hour)})
		c.Send(map[string]any{"type": "JOIN_GROUP", "groupId": "behind", "username": "dave"})
		chattest.ExpectSuccess(t, c, "Authenticated as dave")
		chattest.ExpectSuccess(t, c, "Joined group behind")
	})
}
