package encryption

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
)

// The cluster's copy of the keys lives in a ConfigMap, not a Secret: a
// Secret would be encrypted with the very keys it carries, and a server
// that lost them could never read them back. It is sealed instead with a
// key derived from the cluster CA's private key, which every server holds
// and nothing else does.

func sealer(caKey []byte) (cipher.AEAD, error) {
	if len(caKey) == 0 {
		return nil, errors.New("no cluster CA key to seal the encryption keys with")
	}
	key := sha256.Sum256(append([]byte("monokube secrets-encryption keys\x00"), caKey...))
	block, err := aes.NewCipher(key[:])
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func seal(caKey []byte, keys []Key) ([]byte, error) {
	aead, err := sealer(caKey)
	if err != nil {
		return nil, err
	}
	plain, err := json.Marshal(keys)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return aead.Seal(nonce, nonce, plain, nil), nil
}

func unseal(caKey, sealed []byte) ([]Key, error) {
	aead, err := sealer(caKey)
	if err != nil {
		return nil, err
	}
	if len(sealed) < aead.NonceSize() {
		return nil, errors.New("the cluster's encryption keys are truncated")
	}
	plain, err := aead.Open(nil, sealed[:aead.NonceSize()], sealed[aead.NonceSize():], nil)
	if err != nil {
		return nil, errors.New("the cluster's encryption keys do not open with this server's CA key (is it a server of this cluster?)")
	}
	var keys []Key
	if err := json.Unmarshal(plain, &keys); err != nil {
		return nil, fmt.Errorf("decode the cluster's encryption keys: %w", err)
	}
	return keys, nil
}
