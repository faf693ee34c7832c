package tunnel

import (
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

// WriteEgressSelectorConfig writes the API server's
// --egress-selector-config-file: its "cluster" connections (kubelets,
// pods, Services, webhooks, aggregated APIs) go to the Egress proxy on
// socket; the control plane and etcd are dialed directly.
func WriteEgressSelectorConfig(path, socket string) error {
	doc := map[string]any{
		"apiVersion": "apiserver.k8s.io/v1beta1",
		"kind":       "EgressSelectorConfiguration",
		"egressSelections": []any{map[string]any{
			"name": "cluster",
			"connection": map[string]any{
				"proxyProtocol": "HTTPConnect",
				"transport":     map[string]any{"uds": map[string]any{"udsName": socket}},
			},
		}},
	}
	raw, err := yaml.Marshal(doc)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		return fmt.Errorf("write egress selector config: %w", err)
	}
	return nil
}
