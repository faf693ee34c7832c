// Package pki creates and reuses the cluster's certificate authorities, leaf
// certificates, service-account keys and kubeconfigs.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// Authority is a certificate authority whose key is on disk.
type Authority struct {
	// Cert is the certificate that signs: the one Key belongs to.
	Cert *x509.Certificate
	Key  crypto.Signer
	// CertPEM is what clients trust: Cert, and during a CA rotation the
	// other CA beside it (see the carotation package).
	CertPEM []byte
	// Retired are CAs a rotation dropped; a serving chain ends with them so
	// a join token pinning one is told the CA rotated (see ServeCA).
	Retired []byte
}

// LoadOrCreateAuthority reuses <dir>/<name>.crt and .key, or creates a new
// self-signed CA (ten years, the client-go default) when neither exists. A CA
// is never replaced silently: a half-present or unreadable pair is an error.
func LoadOrCreateAuthority(dir, name, commonName string) (*Authority, error) {
	certPath, keyPath := filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	certExists, keyExists := exists(certPath), exists(keyPath)
	switch {
	case certExists && keyExists:
		return loadAuthority(certPath, keyPath)
	case certExists || keyExists:
		return nil, fmt.Errorf("CA %s: only one of %s and %s exists; restore the missing file or remove both to create a new CA (every certificate it signed becomes invalid)", name, certPath, keyPath)
	}
	ca, err := NewAuthority(commonName)
	if err != nil {
		return nil, err
	}
	if err := writeKeyPair(certPath, keyPath, ca.CertPEM, ca.Key); err != nil {
		return nil, err
	}
	return ca, nil
}

// LoadAuthority reads the CA in certPath and keyPath.
func LoadAuthority(certPath, keyPath string) (*Authority, error) {
	return loadAuthority(certPath, keyPath)
}

// NewAuthority makes a new self-signed CA (ten years) in memory.
func NewAuthority(commonName string) (*Authority, error) {
	key, err := newKey()
	if err != nil {
		return nil, err
	}
	caCert, err := cert.NewSelfSignedCACert(cert.Config{CommonName: commonName}, key)
	if err != nil {
		return nil, fmt.Errorf("create CA %s: %w", commonName, err)
	}
	return &Authority{Cert: caCert, Key: key, CertPEM: encodeCert(caCert)}, nil
}

// loadAuthority reads a CA whose certificate file may hold several CAs
// (a trust bundle during a rotation): the one the key belongs to signs.
func loadAuthority(certPath, keyPath string) (*Authority, error) {
	certs, err := cert.CertsFromFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	key, err := keyutil.PrivateKeyFromFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("read CA key: %w", err)
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("CA key %s cannot sign", keyPath)
	}
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("read CA certificate: %w", err)
	}
	ca := &Authority{Key: signer, CertPEM: certPEM}
	for _, c := range certs {
		if KeyMatches(c, signer) {
			ca.Cert = c
			break
		}
	}
	if ca.Cert == nil {
		return nil, fmt.Errorf("no certificate in %s belongs to the key %s", certPath, keyPath)
	}
	if retired, err := os.ReadFile(RetiredFile(certPath)); err == nil {
		ca.Retired = retired
	}
	return ca, nil
}

// RetiredFile is where the CAs a rotation dropped are kept, beside the
// CA certificate file: <name>-retired.crt.
func RetiredFile(certPath string) string {
	return strings.TrimSuffix(certPath, ".crt") + "-retired.crt"
}

// KeyMatches reports whether key is c's private key.
func KeyMatches(c *x509.Certificate, key crypto.Signer) bool {
	public, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	return ok && public.Equal(c.PublicKey)
}

// EncodeCert is c as PEM.
func EncodeCert(c *x509.Certificate) []byte { return encodeCert(c) }

// SignerPEM is the signing certificate alone, for a signer that takes
// exactly one (the controller-manager's).
func (ca *Authority) SignerPEM() []byte { return encodeCert(ca.Cert) }

// newKey makes an ECDSA P-256 key: as strong as RSA-3072 for TLS and about a
// hundred times faster to generate, which shows in first-start time.
func newKey() (*ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return key, nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
