package pki

import (
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"path/filepath"

	"k8s.io/client-go/util/keyutil"
)

// EnsureServiceAccountKey keeps <dir>/sa.key and sa.pub, the pair the API
// server signs and verifies service-account tokens with. It is never
// rotated automatically: every issued token would stop verifying.
func EnsureServiceAccountKey(dir string) error {
	keyPath, pubPath := filepath.Join(dir, "sa.key"), filepath.Join(dir, "sa.pub")
	if exists(keyPath) && exists(pubPath) {
		return nil
	}
	if exists(keyPath) {
		key, err := keyutil.PrivateKeyFromFile(keyPath)
		if err != nil {
			return fmt.Errorf("read service-account key: %w", err)
		}
		return writePublic(pubPath, key.(crypto.Signer).Public())
	}
	key, err := newKey()
	if err != nil {
		return err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return fmt.Errorf("encode service-account key: %w", err)
	}
	if err := writeAtomic(keyPath, keyPEM, 0o600); err != nil {
		return err
	}
	return writePublic(pubPath, key.Public())
}

func writePublic(path string, public crypto.PublicKey) error {
	data, err := PublicKeyPEM(public)
	if err != nil {
		return err
	}
	return writeAtomic(path, data, 0o644)
}

// PublicKeyPEM encodes a service-account public key as sa.pub holds it
// (the file may list several: the API server verifies with each).
func PublicKeyPEM(public crypto.PublicKey) ([]byte, error) {
	der, err := x509.MarshalPKIXPublicKey(public)
	if err != nil {
		return nil, fmt.Errorf("encode service-account public key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), nil
}
