package config

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/kubernetes/pkg/util/taints"

	"github.com/monokube/monokube/internal/cgroups"
)

// WorkerProblem is one invalid field of a WorkerSpec. Field is its name in
// the config file (the command line maps it to its flag); Index is the list
// item for labels and taints, -1 otherwise.
type WorkerProblem struct {
	Field   string
	Index   int
	Message string
}

// Problems checks a node's settings, whether they came from the config
// file (server --enable-worker) or from flags (worker): one rule for both.
func (w WorkerSpec) Problems() []WorkerProblem {
	var problems []WorkerProblem
	if w.CgroupRoot != "" {
		if err := cgroups.ValidateRoot(w.CgroupRoot); err != nil {
			problems = append(problems, WorkerProblem{Field: "cgroupRoot", Index: -1, Message: err.Error()})
		}
	}
	if w.NodeName != "" {
		if errs := validation.IsDNS1123Subdomain(w.NodeName); len(errs) > 0 {
			problems = append(problems, WorkerProblem{Field: "nodeName", Index: -1,
				Message: fmt.Sprintf("%q must be a lower-case DNS name: %s", w.NodeName, strings.Join(errs, "; "))})
		}
	}
	for i, label := range w.Labels {
		if _, err := ParseNodeLabels([]string{label}); err != nil {
			problems = append(problems, WorkerProblem{Field: "labels", Index: i, Message: err.Error()})
		}
	}
	for i, taint := range w.Taints {
		if _, err := ParseNodeTaints([]string{taint}); err != nil {
			problems = append(problems, WorkerProblem{Field: "taints", Index: i, Message: err.Error()})
		}
	}
	return problems
}

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
