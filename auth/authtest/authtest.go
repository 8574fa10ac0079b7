// Package authtest makes keys, key files and signed tokens for tests.
package authtest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Keys is a set of private keys of every supported type.
type Keys struct {
	RSA, RSA2 *rsa.PrivateKey
	EC        *ecdsa.PrivateKey
	EC384     *ecdsa.PrivateKey
	Ed        ed25519.PrivateKey
}

var (
	keysOnce sync.Once
	keys     *Keys
)

// Shared returns one set of keys per test binary (RSA generation is slow).
func Shared(t testing.TB) *Keys {
	t.Helper()
	keysOnce.Do(func() {
		k := &Keys{}
		var err error
		if k.RSA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if k.RSA2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if k.EC, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if k.EC384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader); err != nil {
			panic(err)
		}
		if _, k.Ed, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
		keys = k
	})
	return keys
}

// Claims are the claims of a token for user valid for ttl from now.
func Claims(user string, ttl time.Duration) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"username": user, "iat": now.Unix(), "exp": now.Add(ttl).Unix()}
}

// Sign signs claims with method and key, adding kid to the header if set.
func Sign(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims, kid string) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// Unsigned is an "alg":"none" token.
func Unsigned(t testing.TB, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// PublicPEM returns pub as a PKIX "PUBLIC KEY" PEM block.
func PublicPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

// WritePEM writes pub to a new file in a temporary directory.
func WritePEM(t testing.TB, pub any) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, PublicPEM(t, pub), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// JWK is one key of a JWKS file.
type JWK struct {
	Kid string
	Pub any
	Alg string // optional
}

// WriteJWKS (re)writes path as a JWKS document holding keys, replacing the
// file atomically.
func WriteJWKS(t testing.TB, path string, keys ...JWK) {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	for _, k := range keys {
		m := map[string]string{"kid": k.Kid, "use": "sig"}
		if k.Alg != "" {
			m["alg"] = k.Alg
		}
		switch p := k.Pub.(type) {
		case *rsa.PublicKey:
			m["kty"], m["n"], m["e"] = "RSA", b64(p.N.Bytes()), b64([]byte{1, 0, 1})
		case *ecdsa.PublicKey:
			raw, err := p.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			n := (len(raw) - 1) / 2
			m["kty"], m["crv"], m["x"], m["y"] = "EC", p.Curve.Params().Name, b64(raw[1:1+n]), b64(raw[1+n:])
		case ed25519.PublicKey:
			m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64(p)
		default:
			t.Fatalf("WriteJWKS: %T", k.Pub)
		}
		doc.Keys = append(doc.Keys, m)
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
