package pki

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
)

// Servers agree on secrets (encryption keys, a new CA's key) through
// ConfigMaps, not Secrets: a Secret would be encrypted with the very keys
// it may carry. The data is sealed instead under a key derived from the
// cluster CA's private key, which every server holds and nothing else
// does. purpose keeps one use's sealed data from opening as another's.

func sealer(caKey []byte, purpose string) (cipher.AEAD, error) {
	if len(caKey) == 0 {
		return nil, errors.New("no cluster CA key to seal with")
	}
	key := sha256.Sum256(append([]byte(purpose+"\x00"), caKey...))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// SealWithCAKey encrypts plain with AES-GCM under a key derived from
// caKey (the CA private key's file content) and purpose.
func SealWithCAKey(caKey []byte, purpose string, plain []byte) ([]byte, error) {
	aead, err := sealer(caKey, purpose)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plain, nil), nil
}

// ErrNotSealedForThisCA is returned when sealed data does not open with
// the CA key given.
var ErrNotSealedForThisCA = errors.New("it does not open with this server's CA key (is it a server of this cluster?)")

// OpenWithCAKey reverses SealWithCAKey.
func OpenWithCAKey(caKey []byte, purpose string, sealed []byte) ([]byte, error) {
	aead, err := sealer(caKey, purpose)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("sealed data truncated")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return nil, ErrNotSealedForThisCA
	}
	return plain, nil
}
