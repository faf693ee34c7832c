package config

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/kubernetes/pkg/util/taints"
)

// ParseNodeLabels reads "key=value" labels (as --node-label and
// spec.worker.labels give them) for the Node's registration.
func ParseNodeLabels(specs []string) (map[string]string, error) {
	labels := map[string]string{}
	for _, spec := range specs {
		key, value, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("label %q: want key=value", spec)
		}
		if errs := validation.IsQualifiedName(key); len(errs) > 0 {
			return nil, fmt.Errorf("label %q: key: %s", spec, strings.Join(errs, "; "))
		}
		if errs := validation.IsValidLabelValue(value); len(errs) > 0 {
			return nil, fmt.Errorf("label %q: value: %s", spec, strings.Join(errs, "; "))
		}
		labels[key] = value
	}
	return labels, nil
}

// ParseNodeTaints reads "key=value:Effect" taints (as --node-taint and
// spec.worker.taints give them), the kubectl taint syntax.
func ParseNodeTaints(specs []string) ([]corev1.Taint, error) {
	if len(specs) == 0 {
		return nil, nil
	}
	add, remove, err := taints.ParseTaints(specs)
	if err != nil {
		return nil, fmt.Errorf("taints %q: %w", specs, err)
	}
	if len(remove) > 0 {
		return nil, fmt.Errorf("taints %q: a taint to remove (ending in -) makes no sense at registration", specs)
	}
	return add, nil
}
