// Package auth verifies the JSON Web Tokens that authenticate chat and
// presence connections (github.com/golang-jwt/jwt/v5).
//
// Keys: an HMAC secret (HS256/384/512), a PEM public key (RSA: RS* and
// PS*; ECDSA: the ES* of its curve; Ed25519: EdDSA) and a JWKS file whose
// keys are chosen by the token's kid. The algorithm is pinned to the key
// type: a token is only ever checked with a key of the family its alg
// names, so "none" and algorithm confusion (HS256 signed with an RSA public
// key) fail. exp and nbf are enforced with a leeway; iss and aud when
// configured.
//
// Verify does CPU work and, for a JWKS file, may stat and re-read the
// file: never call it on an event loop (see Pool).
package auth

import (
	"crypto"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Config is the token verification configuration. The zero value rejects
// every token; Defaults sets the documented defaults.
type Config struct {
	Secret        string        // HMAC secret (--jwt-secret)
	PublicKeyFile string        // PEM public key or certificate (--jwt-public-key)
	JWKSFile      string        // JWKS file, re-read when it changes (--jwt-jwks)
	Leeway        time.Duration // clock leeway for exp/nbf (--jwt-leeway); 0: none
	Issuer        string        // required iss, if set (--jwt-issuer)
	Audience      string        // required aud, if set (--jwt-audience)
	UsernameClaim string        // claim holding the username, "sub" as fallback (default "username")
}

// Defaults returns the documented defaults.
func Defaults() Config { return Config{Leeway: 5 * time.Second, UsernameClaim: "username"} }

// Validate checks c and fills zero values with defaults.
func (c *Config) Validate() error {
	if c.Leeway < 0 {
		return errors.New("jwt-leeway must not be negative")
	}
	if c.UsernameClaim == "" {
		c.UsernameClaim = "username"
	}
	return nil
}

// Configured reports whether any key source is set.
func (c *Config) Configured() bool {
	return c.Secret != "" || c.PublicKeyFile != "" || c.JWKSFile != ""
}

// Claims is what a verified token says.
type Claims struct {
	Username string
	Expires  time.Time // zero: the token has no exp
}

// MaxToken is the longest token accepted, in bytes.
const MaxToken = 16 << 10

// MaxUsername is the longest username accepted, in bytes.
const MaxUsername = 128

// Verifier checks tokens. Safe for concurrent use.
type Verifier struct {
	cfg    Config
	secret []byte
	pem    *key // from PublicKeyFile, or nil
	jwks   *jwksFile
	parser *jwt.Parser
}

// New loads the configured keys (reading files: call it at startup).
func New(cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	v := &Verifier{cfg: cfg}
	methods := map[string]bool{}
	if cfg.Secret != "" {
		v.secret = []byte(cfg.Secret)
		for _, a := range hmacAlgs {
			methods[a] = true
		}
	}
	if cfg.PublicKeyFile != "" {
		k, err := loadPEM(cfg.PublicKeyFile)
		if err != nil {
			return nil, err
		}
		v.pem = k
		for _, a := range k.algs {
			methods[a] = true
		}
	}
	if cfg.JWKSFile != "" {
		j, err := openJWKS(cfg.JWKSFile)
		if err != nil {
			return nil, err
		}
		v.jwks = j
		for _, a := range asymAlgs {
			methods[a] = true
		}
	}
	valid := []string{}
	for a := range methods {
		valid = append(valid, a)
	}
	if len(valid) == 0 {
		valid = []string{"-"} // nothing configured: nil would allow any method
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods(valid), jwt.WithLeeway(cfg.Leeway)}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// Leeway is the configured clock leeway.
func (v *Verifier) Leeway() time.Duration { return v.cfg.Leeway }

// Verify checks token and returns its claims. Errors read well after
// "Authentication failed: ".
func (v *Verifier) Verify(token string) (Claims, error) {
	if len(token) > MaxToken {
		return Claims{}, errors.New("token too long")
	}
	if !v.cfg.Configured() {
		return Claims{}, errors.New("no token key is configured on this server")
	}
	mc := jwt.MapClaims{}
	if _, err := v.parser.ParseWithClaims(token, mc, v.keyFor); err != nil {
		return Claims{}, describe(err)
	}
	var c Claims
	name, _ := mc[v.cfg.UsernameClaim].(string)
	if name == "" {
		name, _ = mc["sub"].(string)
	}
	if !validUsername(name) {
		return Claims{}, fmt.Errorf("token has no valid %q or \"sub\" claim (1-%d bytes, no control characters)", v.cfg.UsernameClaim, MaxUsername)
	}
	c.Username = name
	if exp, err := mc.GetExpirationTime(); err == nil && exp != nil {
		c.Expires = exp.Time
	}
	return c, nil
}

// keyFor is the jwt.Keyfunc: it picks the key for the token's alg (and
// kid) and refuses any key whose type does not match the alg.
func (v *Verifier) keyFor(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if isHMAC(alg) {
		if v.secret == nil {
			return nil, fmt.Errorf("%s tokens are not accepted: no shared secret is configured", alg)
		}
		return v.secret, nil
	}
	kid, _ := t.Header["kid"].(string)
	if v.jwks != nil {
		k, err := v.jwks.lookup(kid, alg)
		if err == nil {
			return k.pub, nil
		}
		if v.pem == nil || kid != "" {
			return nil, err
		}
	}
	if v.pem != nil && v.pem.allows(alg) {
		return v.pem.pub, nil
	}
	return nil, fmt.Errorf("%s tokens are not accepted: no key of that type is configured", alg)
}

func describe(err error) error {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return errors.New("malformed token")
	case errors.Is(err, jwt.ErrTokenExpired):
		return errors.New("token expired")
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return errors.New("token not valid yet")
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return errors.New("wrong token issuer")
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return errors.New("wrong token audience")
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return fmt.Errorf("token unverifiable: %s", strings.TrimPrefix(err.Error(), "token is unverifiable: error while executing keyfunc: "))
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return errors.New(strings.TrimPrefix(err.Error(), "token has invalid claims: "))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && strings.Contains(err.Error(), "signing method"):
		return fmt.Errorf("algorithm %q not accepted: no key of that type is configured", strings.TrimSuffix(strings.TrimPrefix(err.Error(), "token signature is invalid: signing method "), " is invalid"))
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return errors.New("invalid token signature")
	}
	return fmt.Errorf("invalid token: %w", err)
}

func validUsername(s string) bool {
	if len(s) == 0 || len(s) > MaxUsername {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return false
		}
	}
	return true
}

// key is one public key and the algorithms it may verify.
type key struct {
	pub  crypto.PublicKey
	algs []string
}

func (k *key) allows(alg string) bool {
	for _, a := range k.algs {
		if a == alg {
			return true
		}
	}
	return false
}

var (
	hmacAlgs = []string{"HS256", "HS384", "HS512"}
	rsaAlgs  = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}
	asymAlgs = append([]string{"ES256", "ES384", "ES512", "EdDSA"}, rsaAlgs...)
)

func isHMAC(alg string) bool { return strings.HasPrefix(alg, "HS") }

// SignHS256 signs claims with secret (for `partyline token` and tests).
func SignHS256(secret []byte, claims map[string]any) (string, error) {
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims)).SignedString(secret)
}
