package bootstrap

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/internal/join"
)

// FetchClusterSettings reads the settings as a node or bootstrap token.
func FetchClusterSettings(ctx context.Context, client kubernetes.Interface) (join.ClusterSettings, error) {
	var settings join.ClusterSettings
	configMap, err := client.CoreV1().ConfigMaps(metav1.NamespaceSystem).Get(ctx, join.SettingsConfigMap, metav1.GetOptions{})
	if err != nil {
		return settings, fmt.Errorf("read cluster settings: %w", err)
	}
	if err := json.Unmarshal([]byte(configMap.Data[join.SettingsKey]), &settings); err != nil {
		return settings, fmt.Errorf("cluster settings: %w", err)
	}
	return settings, nil
}

// SaveClusterSettings and LoadClusterSettings keep a worker's copy, so it
// restarts with the same settings while the server is away.
func SaveClusterSettings(path string, settings join.ClusterSettings) error {
	raw, err := json.MarshalIndent(settings, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("save cluster settings: %w", err)
	}
	return nil
}

func LoadClusterSettings(path string) (join.ClusterSettings, error) {
	var settings join.ClusterSettings
	raw, err := os.ReadFile(path)
	if err != nil {
		return settings, err
	}
	if err := json.Unmarshal(raw, &settings); err != nil {
		return settings, fmt.Errorf("%s: %w", path, err)
	}
	return settings, nil
}
