package auth_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"partyline/auth"
	"partyline/auth/authtest"
)

const secret = "test-secret-0123456789abcdef0123"

func verifier(t *testing.T, mutate func(*auth.Config)) *auth.Verifier {
	t.Helper()
	cfg := auth.Defaults()
	mutate(&cfg)
	v, err := auth.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustVerify(t *testing.T, v *auth.Verifier, tok, user string) auth.Claims {
	t.Helper()
	c, err := v.Verify(tok)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Username != user {
		t.Fatalf("username %q, want %q", c.Username, user)
	}
	return c
}

func mustReject(t *testing.T, v *auth.Verifier, tok, want string) {
	t.Helper()
	_, err := v.Verify(tok)
	if err == nil {
		t.Fatalf("token accepted, want an error mentioning %q", want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not mention %q", err, want)
	}
}

func TestAlgorithms(t *testing.T) {
	k := authtest.Shared(t)
	claims := authtest.Claims("alice", time.Hour)
	hs := verifier(t, func(c *auth.Config) { c.Secret = secret })
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
		t.Run(m.Alg(), func(t *testing.T) {
			c := mustVerify(t, hs, authtest.Sign(t, m, []byte(secret), claims, ""), "alice")
			if c.Expires.Unix() != claims["exp"].(int64) {
				t.Fatalf("expires %v", c.Expires)
			}
		})
	}
	for _, tc := range []struct {
		m    jwt.SigningMethod
		priv any
		pub  any
	}{
		{jwt.SigningMethodRS256, k.RSA, &k.RSA.PublicKey},
		{jwt.SigningMethodPS256, k.RSA, &k.RSA.PublicKey},
		{jwt.SigningMethodES256, k.EC, &k.EC.PublicKey},
		{jwt.SigningMethodES384, k.EC384, &k.EC384.PublicKey},
		{jwt.SigningMethodEdDSA, k.Ed, k.Ed.Public()},
	} {
		t.Run(tc.m.Alg()+"/pem", func(t *testing.T) {
			v := verifier(t, func(c *auth.Config) { c.PublicKeyFile = authtest.WritePEM(t, tc.pub) })
			mustVerify(t, v, authtest.Sign(t, tc.m, tc.priv, claims, ""), "alice")
			mustReject(t, v, authtest.Sign(t, jwt.SigningMethodHS256, []byte(secret), claims, ""), `algorithm "HS256" not accepted`)
		})
	}
}

func TestRejected(t *testing.T) {
	k := authtest.Shared(t)
	pemPath := authtest.WritePEM(t, &k.RSA.PublicKey)
	pemBytes, _ := os.ReadFile(pemPath)
	v := verifier(t, func(c *auth.Config) {
		c.Secret = secret
		c.PublicKeyFile = pemPath
		c.Leeway = 0
	})
	rsaOnly := verifier(t, func(c *auth.Config) { c.PublicKeyFile = pemPath })
	good := authtest.Claims("alice", time.Hour)
	expired := authtest.Claims("alice", -time.Minute)
	future := authtest.Claims("alice", time.Hour)
	future["nbf"] = time.Now().Add(time.Minute).Unix()

	mustReject(t, v, authtest.Unsigned(t, good), `algorithm "none" not accepted`)
	// Algorithm confusion: HS256 keyed with the RSA public key's PEM.
	mustReject(t, rsaOnly, authtest.Sign(t, jwt.SigningMethodHS256, pemBytes, good, ""), `algorithm "HS256" not accepted`)
	mustReject(t, v, authtest.Sign(t, jwt.SigningMethodHS256, pemBytes, good, ""), "signature")
	mustReject(t, v, authtest.Sign(t, jwt.SigningMethodHS256, []byte(secret), expired, ""), "expired")
	mustReject(t, v, authtest.Sign(t, jwt.SigningMethodHS256, []byte(secret), future, ""), "not valid yet")
	mustReject(t, v, authtest.Sign(t, jwt.SigningMethodHS256, []byte("other-secret"), good, ""), "signature")
	mustReject(t, v, authtest.Sign(t, jwt.SigningMethodRS256, k.RSA2, good, ""), "signature")
	mustReject(t, v, authtest.Sign(t, jwt.SigningMethodES256, k.EC, good, ""), `algorithm "ES256" not accepted`)
	mustReject(t, v, "garbage", "malformed")
	mustReject(t, v, "", "malformed")
	mustReject(t, v, "a.b.c", "malformed")
	mustReject(t, v, strings.Repeat("x", auth.MaxToken+1), "too long")
	mustReject(t, v, authtest.Sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"exp": time.Now().Add(time.Hour).Unix()}, ""), "claim")
	mustReject(t, v, authtest.Sign(t, jwt.SigningMethodHS256, []byte(secret), jwt.MapClaims{"username": "a\nb"}, ""), "claim")
	mustReject(t, verifier(t, func(*auth.Config) {}), authtest.Sign(t, jwt.SigningMethodHS256, []byte(secret), good, ""), "no token key")
}

func TestLeewayIssuerAudienceClaim(t *testing.T) {
	sign := func(c jwt.MapClaims) string {
		return authtest.Sign(t, jwt.SigningMethodHS256, []byte(secret), c, "")
	}
	recent := authtest.Claims("alice", -2*time.Second)
	lenient := verifier(t, func(c *auth.Config) { c.Secret = secret })
	mustVerify(t, lenient, sign(recent), "alice") // default leeway 5s
	strict := verifier(t, func(c *auth.Config) { c.Secret = secret; c.Leeway = 0 })
	mustReject(t, strict, sign(recent), "expired")

	v := verifier(t, func(c *auth.Config) {
		c.Secret, c.Issuer, c.Audience = secret, "https://issuer.example", "partyline"
	})
	c := authtest.Claims("alice", time.Hour)
	c["iss"], c["aud"] = "https://issuer.example", []string{"other", "partyline"}
	mustVerify(t, v, sign(c), "alice")
	c["iss"] = "https://evil.example"
	mustReject(t, v, sign(c), "issuer")
	c["iss"], c["aud"] = "https://issuer.example", "other"
	mustReject(t, v, sign(c), "audience")
	delete(c, "aud")
	mustReject(t, v, sign(c), "aud claim is required")

	// The username claim is configurable; sub is the fallback.
	named := verifier(t, func(c *auth.Config) { c.Secret, c.UsernameClaim = secret, "preferred_username" })
	mustVerify(t, named, sign(jwt.MapClaims{"preferred_username": "carol", "sub": "id-1"}), "carol")
	mustVerify(t, named, sign(jwt.MapClaims{"username": "x", "sub": "id-1"}), "id-1")
	mustVerify(t, lenient, sign(jwt.MapClaims{"sub": "dave"}), "dave")
	if c := mustVerify(t, lenient, sign(jwt.MapClaims{"sub": "dave"}), "dave"); !c.Expires.IsZero() {
		t.Fatalf("no exp, got expiry %v", c.Expires)
	}
}

func TestJWKSRotation(t *testing.T) {
	k := authtest.Shared(t)
	path := filepath.Join(t.TempDir(), "jwks.json")
	authtest.WriteJWKS(t, path,
		authtest.JWK{Kid: "rsa-1", Pub: &k.RSA.PublicKey, Alg: "RS256"},
		authtest.JWK{Kid: "ec-1", Pub: &k.EC.PublicKey})
	v := verifier(t, func(c *auth.Config) { c.JWKSFile = path })
	claims := authtest.Claims("alice", time.Hour)
	mustVerify(t, v, authtest.Sign(t, jwt.SigningMethodRS256, k.RSA, claims, "rsa-1"), "alice")
	mustVerify(t, v, authtest.Sign(t, jwt.SigningMethodES256, k.EC, claims, "ec-1"), "alice")
	// The JWK's alg pins RS256: PS256 with the same key is refused.
	mustReject(t, v, authtest.Sign(t, jwt.SigningMethodPS256, k.RSA, claims, "rsa-1"), "does not verify")
	// A kid naming a key of another type.
	mustReject(t, v, authtest.Sign(t, jwt.SigningMethodES256, k.EC, claims, "rsa-1"), "does not verify")
	mustReject(t, v, authtest.Sign(t, jwt.SigningMethodRS256, k.RSA2, claims, "rsa-2"), "unknown key id")
	// No kid: the one key that fits the alg.
	mustVerify(t, v, authtest.Sign(t, jwt.SigningMethodES256, k.EC, claims, ""), "alice")

	// Rotate: rsa-2 appears, rsa-1 goes. The new kid is picked up at once;
	// the removed one within the check interval.
	authtest.WriteJWKS(t, path,
		authtest.JWK{Kid: "rsa-2", Pub: &k.RSA2.PublicKey},
		authtest.JWK{Kid: "ed-1", Pub: k.Ed.Public()})
	mustVerify(t, v, authtest.Sign(t, jwt.SigningMethodRS256, k.RSA2, claims, "rsa-2"), "alice")
	mustVerify(t, v, authtest.Sign(t, jwt.SigningMethodEdDSA, k.Ed, claims, "ed-1"), "alice")
	mustReject(t, v, authtest.Sign(t, jwt.SigningMethodRS256, k.RSA, claims, "rsa-1"), "unknown key id")

	// A broken rewrite keeps the previous keys.
	if err := os.WriteFile(path, []byte(`{"keys":[{"kty":"RSA","kid":"x"`), 0o600); err != nil {
		t.Fatal(err)
	}
	mustVerify(t, v, authtest.Sign(t, jwt.SigningMethodRS256, k.RSA2, claims, "rsa-2"), "alice")
}

func TestBadKeyFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for name, cfg := range map[string]auth.Config{
		"missing pem":  {PublicKeyFile: filepath.Join(dir, "nope.pem")},
		"not pem":      {PublicKeyFile: write("x.pem", "hello")},
		"private key":  {PublicKeyFile: write("p.pem", "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")},
		"missing jwks": {JWKSFile: filepath.Join(dir, "nope.json")},
		"empty jwks":   {JWKSFile: write("e.json", `{"keys":[]}`)},
		"bad jwks":     {JWKSFile: write("b.json", `{"keys":[{"kty":"EC","crv":"P-256","x":"AA","y":"AA"}]}`)},
	} {
		if _, err := auth.New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPool(t *testing.T) {
	v := verifier(t, func(c *auth.Config) { c.Secret = secret })
	p := auth.NewPool(v.Verify, 2, 64)
	tok := authtest.Sign(t, jwt.SigningMethodHS256, []byte(secret), authtest.Claims("bob", time.Hour), "")
	var wg sync.WaitGroup
	for range 32 {
		wg.Add(1)
		if !p.Verify(tok, func(c auth.Claims, err error) {
			defer wg.Done()
			if err != nil || c.Username != "bob" {
				t.Errorf("pool verify: %v %v", c, err)
			}
		}) {
			t.Fatal("queue full at 32 of 64")
		}
	}
	wg.Wait()
	p.Close()
	if p.Verify(tok, func(auth.Claims, error) { t.Error("ran after close") }) {
		t.Fatal("Verify accepted after Close")
	}
}

func TestSignHS256(t *testing.T) {
	tok, err := auth.SignHS256([]byte(secret), map[string]any{"username": "eve", "exp": time.Now().Add(time.Minute).Unix()})
	if err != nil {
		t.Fatal(err)
	}
	mustVerify(t, verifier(t, func(c *auth.Config) { c.Secret = secret }), tok, "eve")
}
