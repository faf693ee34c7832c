package registries

import (
	"encoding/json"
	"fmt"
	"os"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Secret in kube-system that carries the cluster's registry settings
// (credentials and keys included) to the nodes: a Secret, so it is
// encrypted at rest when the cluster encrypts Secrets, and readable by
// nodes only (RBAC on this one name).
const (
	SecretName = "monokube-registries"
	secretKey  = "registries.json"
)

// Secret holds s for the nodes.
func Secret(s Settings) (*corev1.Secret, error) {
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: metav1.NamespaceSystem},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{secretKey: raw},
	}, nil
}

// FromSecret reads the settings a server stored.
func FromSecret(secret *corev1.Secret) (Settings, error) {
	var s Settings
	if err := json.Unmarshal(secret.Data[secretKey], &s); err != nil {
		return Settings{}, fmt.Errorf("registry settings in %s/%s: %w", secret.Namespace, secret.Name, err)
	}
	return s, nil
}

// save and load keep a worker's copy (0600: it holds credentials), so it
// restarts with the same settings while the servers are away.
func save(path string, s Settings) error {
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("save registry settings: %w", err)
	}
	return nil
}

func load(path string) (Settings, error) {
	var s Settings
	raw, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(raw, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
