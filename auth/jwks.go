package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// jwksCheck is how often a JWKS file is checked for changes; a token with
// an unknown kid checks it at once.
const jwksCheck = time.Second

// jwksFile is a JWKS file and its current keys, re-read when the file's
// size, modification time or identity changes.
type jwksFile struct {
	path  string
	set   atomic.Pointer[keySet]
	next  atomic.Int64 // unix nanos of the next routine check
	mu    sync.Mutex   // guards info and serializes reloads
	info  os.FileInfo
	onErr func(error) // a reload failed; the previous keys stay (tests)
}

type keySet struct {
	byKID map[string]*key
	all   []*key
}

func openJWKS(path string) (*jwksFile, error) {
	j := &jwksFile{path: path}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("jwt-jwks: %w", err)
	}
	s, err := readJWKS(path)
	if err != nil {
		return nil, fmt.Errorf("jwt-jwks %s: %w", path, err)
	}
	if len(s.all) == 0 {
		return nil, fmt.Errorf("jwt-jwks %s: no usable signing key", path)
	}
	j.set.Store(s)
	j.info = fi
	j.next.Store(time.Now().Add(jwksCheck).UnixNano())
	return j, nil
}

// refresh re-reads the file if it changed; unless force, at most once per
// jwksCheck.
func (j *jwksFile) refresh(force bool) {
	now := time.Now()
	if !force && now.UnixNano() < j.next.Load() {
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.next.Store(now.Add(jwksCheck).UnixNano())
	fi, err := os.Stat(j.path)
	if err != nil {
		j.report(err)
		return
	}
	if os.SameFile(fi, j.info) && fi.ModTime().Equal(j.info.ModTime()) && fi.Size() == j.info.Size() {
		return
	}
	s, err := readJWKS(j.path)
	if err != nil { // a file caught mid-write: keep the old keys, retry later
		j.report(err)
		return
	}
	j.set.Store(s)
	j.info = fi
}

func (j *jwksFile) report(err error) {
	if j.onErr != nil {
		j.onErr(err)
	}
}

// lookup finds the key for kid that may verify alg. Without a kid, the
// file must hold exactly one key for alg.
func (j *jwksFile) lookup(kid, alg string) (*key, error) {
	j.refresh(false)
	s := j.set.Load()
	if kid == "" {
		var found *key
		for _, k := range s.all {
			if k.allows(alg) {
				if found != nil {
					return nil, errors.New("token has no kid and several keys could verify it")
				}
				found = k
			}
		}
		if found == nil {
			return nil, fmt.Errorf("no key in the JWKS verifies %s", alg)
		}
		return found, nil
	}
	k := s.byKID[kid]
	if k == nil {
		j.refresh(true)
		k = j.set.Load().byKID[kid]
	}
	if k == nil {
		return nil, fmt.Errorf("unknown key id %q", kid)
	}
	if !k.allows(alg) {
		return nil, fmt.Errorf("key %q does not verify %s", kid, alg)
	}
	return k, nil
}

type jwk struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// readJWKS parses a JWKS file. Keys of other types (oct, ...) or for other
// uses (enc) are skipped; a malformed supported key is an error.
func readJWKS(path string) (*keySet, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Keys []jwk `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("not a JWKS document: %w", err)
	}
	s := &keySet{byKID: map[string]*key{}}
	for i, jk := range doc.Keys {
		if jk.Use != "" && jk.Use != "sig" {
			continue
		}
		pub, err := jk.public()
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, jk.Kid, err)
		}
		if pub == nil {
			continue
		}
		k, err := newKey(pub, jk.Alg)
		if err != nil {
			return nil, fmt.Errorf("key %d (kid %q): %w", i, jk.Kid, err)
		}
		if jk.Kid != "" {
			if _, dup := s.byKID[jk.Kid]; dup {
				return nil, fmt.Errorf("duplicate kid %q", jk.Kid)
			}
			s.byKID[jk.Kid] = k
		}
		s.all = append(s.all, k)
	}
	return s, nil
}

// public decodes the key; nil, nil for an unsupported type.
func (k *jwk) public() (any, error) {
	switch k.Kty {
	case "RSA":
		n, err1 := b64int(k.N)
		e, err2 := b64int(k.E)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 {
			return nil, errors.New("bad RSA exponent")
		}
		return &rsa.PublicKey{N: n, E: int(e.Int64())}, nil
	case "EC":
		var c elliptic.Curve
		switch k.Crv {
		case "P-256":
			c = elliptic.P256()
		case "P-384":
			c = elliptic.P384()
		case "P-521":
			c = elliptic.P521()
		default:
			return nil, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err1 := b64(k.X)
		y, err2 := b64(k.Y)
		if err := errors.Join(err1, err2); err != nil {
			return nil, err
		}
		size := (c.Params().BitSize + 7) / 8
		if len(x) != size || len(y) != size {
			return nil, errors.New("bad EC coordinate length")
		}
		return ecdsa.ParseUncompressedPublicKey(c, append(append([]byte{4}, x...), y...))
	case "OKP":
		if k.Crv != "Ed25519" {
			return nil, fmt.Errorf("unsupported OKP curve %q", k.Crv)
		}
		x, err := b64(k.X)
		if err != nil {
			return nil, err
		}
		if len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad Ed25519 key length")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, nil
}

func b64(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("missing key parameter")
	}
	return base64.RawURLEncoding.DecodeString(s)
}

func b64int(s string) (*big.Int, error) {
	b, err := b64(s)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}
