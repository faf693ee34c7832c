// Package encryption keeps the keys that encrypt Secrets in the datastore:
// the API server's EncryptionConfiguration on each server, the cluster's
// copy of the keys that servers agree through, and the rotation that
// replaces a key while every server keeps reading and writing.
package encryption

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	"sigs.k8s.io/yaml"
)

// Providers a key can use (spec.secretsEncryption.provider).
const (
	ProviderSecretbox = "secretbox" // XSalsa20-Poly1305
	ProviderAESCBC    = "aescbc"
	ProviderAESGCM    = "aesgcm"
	ProviderKMS       = "kms" // KMS v2: an external key manager's plugin
)

// Providers are the allowed values of spec.secretsEncryption.provider.
var Providers = []string{ProviderSecretbox, ProviderAESCBC, ProviderAESGCM, ProviderKMS}

// keyPrefix names every key monokube makes; the number after it grows
// with each rotation so no two keys of a cluster share a name (the name
// is part of what is stored in front of each Secret).
const keyPrefix = "monokube-"

// Key is one entry of the keyset. A kms key has no secret: the plugin
// holds the key-encryption key and the API server makes data keys.
type Key struct {
	Name     string `json:"name"`
	Provider string `json:"provider"`
	Secret   string `json:"secret,omitempty"`
	Endpoint string `json:"endpoint,omitempty"`
	Timeout  string `json:"timeout,omitempty"`
}

// Settings are how this server is configured to make new keys.
type Settings struct {
	Provider    string        `json:"provider"`
	KMSEndpoint string        `json:"kmsEndpoint,omitempty"`
	KMSTimeout  time.Duration `json:"kmsTimeout,omitempty"`
}

// NewKey makes the key that follows keys, by settings.
func NewKey(settings Settings, keys []Key) (Key, error) {
	next := 1
	for _, k := range keys {
		if n, err := strconv.Atoi(strings.TrimPrefix(k.Name, keyPrefix)); err == nil && n >= next {
			next = n + 1
		}
	}
	key := Key{Name: keyPrefix + strconv.Itoa(next), Provider: settings.Provider}
	switch settings.Provider {
	case ProviderKMS:
		if settings.KMSEndpoint == "" {
			return key, errors.New("the kms provider needs spec.secretsEncryption.kms.endpoint")
		}
		key.Endpoint, key.Timeout = settings.KMSEndpoint, settings.KMSTimeout.String()
	case ProviderSecretbox, ProviderAESCBC, ProviderAESGCM:
		// 32 bytes: secretbox needs exactly that, and AES-256 for the others.
		raw := make([]byte, 32)
		if _, err := rand.Read(raw); err != nil {
			return key, fmt.Errorf("generate encryption key: %w", err)
		}
		key.Secret = base64.StdEncoding.EncodeToString(raw)
	default:
		return key, fmt.Errorf("unknown encryption provider %q (one of %s)", settings.Provider, strings.Join(Providers, ", "))
	}
	return key, nil
}

// Render is the API server's EncryptionConfiguration for Secrets: keys[0]
// writes, every key reads. With encryption off, identity writes and the
// keys stay listed so Secrets written while it was on can still be read.
func Render(keys []Key, enabled bool) ([]byte, error) {
	var providers []apiserverv1.ProviderConfiguration
	for _, key := range keys {
		p, err := providerOf(key)
		if err != nil {
			return nil, err
		}
		providers = append(providers, p)
	}
	identity := apiserverv1.ProviderConfiguration{Identity: &apiserverv1.IdentityConfiguration{}}
	if enabled {
		providers = append(providers, identity)
	} else {
		providers = append([]apiserverv1.ProviderConfiguration{identity}, providers...)
	}
	config := apiserverv1.EncryptionConfiguration{
		TypeMeta:  metav1.TypeMeta{APIVersion: "apiserver.config.k8s.io/v1", Kind: "EncryptionConfiguration"},
		Resources: []apiserverv1.ResourceConfiguration{{Resources: []string{"secrets"}, Providers: providers}},
	}
	out, err := yaml.Marshal(config)
	if err != nil {
		return nil, fmt.Errorf("encode encryption config: %w", err)
	}
	return out, nil
}

func providerOf(key Key) (apiserverv1.ProviderConfiguration, error) {
	keys := []apiserverv1.Key{{Name: key.Name, Secret: key.Secret}}
	switch key.Provider {
	case ProviderSecretbox:
		return apiserverv1.ProviderConfiguration{Secretbox: &apiserverv1.SecretboxConfiguration{Keys: keys}}, nil
	case ProviderAESCBC:
		return apiserverv1.ProviderConfiguration{AESCBC: &apiserverv1.AESConfiguration{Keys: keys}}, nil
	case ProviderAESGCM:
		return apiserverv1.ProviderConfiguration{AESGCM: &apiserverv1.AESConfiguration{Keys: keys}}, nil
	case ProviderKMS:
		timeout, err := time.ParseDuration(key.Timeout)
		if err != nil {
			return apiserverv1.ProviderConfiguration{}, fmt.Errorf("key %s: timeout %q: %w", key.Name, key.Timeout, err)
		}
		return apiserverv1.ProviderConfiguration{KMS: &apiserverv1.KMSConfiguration{
			APIVersion: "v2", Name: key.Name, Endpoint: key.Endpoint, Timeout: &metav1.Duration{Duration: timeout},
		}}, nil
	}
	return apiserverv1.ProviderConfiguration{}, fmt.Errorf("key %s: unknown provider %q", key.Name, key.Provider)
}

// Parse reads the keys back from a rendered configuration, write key first.
func Parse(data []byte) ([]Key, error) {
	var config apiserverv1.EncryptionConfiguration
	if err := yaml.UnmarshalStrict(data, &config); err != nil {
		return nil, fmt.Errorf("decode encryption config: %w", err)
	}
	var keys []Key
	for _, resource := range config.Resources {
		if !slices.Contains(resource.Resources, "secrets") {
			continue
		}
		for _, p := range resource.Providers {
			switch {
			case p.Secretbox != nil:
				keys = appendKeys(keys, ProviderSecretbox, p.Secretbox.Keys)
			case p.AESCBC != nil:
				keys = appendKeys(keys, ProviderAESCBC, p.AESCBC.Keys)
			case p.AESGCM != nil:
				keys = appendKeys(keys, ProviderAESGCM, p.AESGCM.Keys)
			case p.KMS != nil:
				timeout := "3s"
				if p.KMS.Timeout != nil {
					timeout = p.KMS.Timeout.Duration.String()
				}
				keys = append(keys, Key{Name: p.KMS.Name, Provider: ProviderKMS, Endpoint: p.KMS.Endpoint, Timeout: timeout})
			}
		}
	}
	return keys, nil
}

func appendKeys(keys []Key, provider string, in []apiserverv1.Key) []Key {
	for _, k := range in {
		keys = append(keys, Key{Name: k.Name, Provider: provider, Secret: k.Secret})
	}
	return keys
}

// Files are a server's encryption files in its PKI directory.
type Files struct{ Dir string }

// Config is the API server's EncryptionConfiguration, the server's own
// record of the keys (shared with joining servers and kept in backups).
func (f Files) Config() string { return filepath.Join(f.Dir, "encryption-config.yaml") }

// legacyKey is the one secretbox key of clusters made before rotation
// existed; its name was always monokube-1.
func (f Files) legacyKey() string { return filepath.Join(f.Dir, "encryption.key") }

// Keys are the keys this server holds, write key first; none when
// encryption has never been on.
func (f Files) Keys() ([]Key, error) {
	data, err := os.ReadFile(f.Config())
	if err == nil {
		return Parse(data)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read encryption config: %w", err)
	}
	secret, err := os.ReadFile(f.legacyKey())
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("read encryption key: %w", err)
	}
	return []Key{{Name: keyPrefix + "1", Provider: ProviderSecretbox, Secret: strings.TrimSpace(string(secret))}}, nil
}

// Write renders keys into the configuration file, replacing it whole:
// the API server re-reads the file while it runs and must never see half
// of it. It reports whether the content changed.
func (f Files) Write(keys []Key, enabled bool) (bool, error) {
	data, err := Render(keys, enabled)
	if err != nil {
		return false, err
	}
	if old, err := os.ReadFile(f.Config()); err == nil && string(old) == string(data) {
		return false, nil
	}
	tmp := f.Config() + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return false, fmt.Errorf("write encryption config: %w", err)
	}
	if err := os.Rename(tmp, f.Config()); err != nil {
		return false, fmt.Errorf("write encryption config: %w", err)
	}
	return true, nil
}

// Prepare makes sure the configuration exists before the API server
// starts, making the first key when encryption is switched on for the
// first time. It returns the file's path, or "" when encryption has never
// been on.
func (f Files) Prepare(enabled bool, settings Settings) (string, error) {
	keys, err := f.Keys()
	if err != nil {
		return "", err
	}
	if len(keys) == 0 {
		if !enabled {
			return "", nil
		}
		key, err := NewKey(settings, nil)
		if err != nil {
			return "", err
		}
		keys = []Key{key}
	}
	if _, err := f.Write(keys, enabled); err != nil {
		return "", err
	}
	return f.Config(), nil
}
