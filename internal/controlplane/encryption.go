package controlplane

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"sigs.k8s.io/yaml"
)

// encryptionKeyName names the one secretbox key; rotation would add key2.
const encryptionKeyName = "monokube-1"

// writeEncryptionConfig writes the API server's EncryptionConfiguration for
// Secrets. The secretbox key is made once and kept (0600 in the PKI dir):
// losing it makes every encrypted Secret unreadable. When encryption is
// switched off after having been on, the key stays listed after identity so
// Secrets written while it was on can still be read. It returns "" when no
// configuration is needed at all.
func writeEncryptionConfig(path, keyPath string, enabled bool) (string, error) {
	key, err := os.ReadFile(keyPath)
	switch {
	case errors.Is(err, os.ErrNotExist) && !enabled:
		return "", nil
	case errors.Is(err, os.ErrNotExist):
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return "", fmt.Errorf("generate encryption key: %w", err)
		}
		key = []byte(base64.StdEncoding.EncodeToString(raw))
		if err := os.WriteFile(keyPath, key, 0o600); err != nil {
			return "", fmt.Errorf("write encryption key: %w", err)
		}
	case err != nil:
		return "", fmt.Errorf("read encryption key: %w", err)
	}
	secretbox := apiserverv1.ProviderConfiguration{Secretbox: &apiserverv1.SecretboxConfiguration{
		Keys: []apiserverv1.Key{{Name: encryptionKeyName, Secret: string(key)}},
	}}
	identity := apiserverv1.ProviderConfiguration{Identity: &apiserverv1.IdentityConfiguration{}}
	// The first provider writes; all of them read.
	providers := []apiserverv1.ProviderConfiguration{secretbox, identity}
	if !enabled {
		providers = []apiserverv1.ProviderConfiguration{identity, secretbox}
	}
	config := apiserverv1.EncryptionConfiguration{
		TypeMeta:  metav1.TypeMeta{APIVersion: "apiserver.config.k8s.io/v1", Kind: "EncryptionConfiguration"},
		Resources: []apiserverv1.ResourceConfiguration{{Resources: []string{"secrets"}, Providers: providers}},
	}
	out, err := yaml.Marshal(config)
	if err != nil {
		return "", fmt.Errorf("encode encryption config: %w", err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return "", fmt.Errorf("write encryption config: %w", err)
	}
	return path, nil
}
