package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// loadPEM reads a PUBLIC KEY (PKIX), RSA PUBLIC KEY (PKCS #1) or
// CERTIFICATE block.
func loadPEM(path string) (*key, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("jwt-public-key: %w", err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("jwt-public-key %s: no PEM block", path)
	}
	var pub any
	switch blk.Type {
	case "PUBLIC KEY":
		pub, err = x509.ParsePKIXPublicKey(blk.Bytes)
	case "RSA PUBLIC KEY":
		pub, err = x509.ParsePKCS1PublicKey(blk.Bytes)
	case "CERTIFICATE":
		var cert *x509.Certificate
		if cert, err = x509.ParseCertificate(blk.Bytes); err == nil {
			pub = cert.PublicKey
		}
	default:
		return nil, fmt.Errorf("jwt-public-key %s: PEM block %q is not a public key (a private key must not be given)", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("jwt-public-key %s: %w", path, err)
	}
	k, err := newKey(pub, "")
	if err != nil {
		return nil, fmt.Errorf("jwt-public-key %s: %w", path, err)
	}
	return k, nil
}

// newKey pins pub to the algorithms of its type; alg, if set (a JWK's
// "alg"), narrows them to that one.
func newKey(pub any, alg string) (*key, error) {
	var algs []string
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits: at least 2048 required", p.N.BitLen())
		}
		algs = rsaAlgs
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256():
			algs = []string{"ES256"}
		case elliptic.P384():
			algs = []string{"ES384"}
		case elliptic.P521():
			algs = []string{"ES512"}
		default:
			return nil, errors.New("unsupported ECDSA curve")
		}
	case ed25519.PublicKey:
		algs = []string{"EdDSA"}
	default:
		return nil, fmt.Errorf("unsupported public key type %T", pub)
	}
	k := &key{pub: pub, algs: algs}
	if alg != "" {
		if !k.allows(alg) {
			return nil, fmt.Errorf("alg %q does not fit a %T", alg, pub)
		}
		k.algs = []string{alg}
	}
	return k, nil
}
