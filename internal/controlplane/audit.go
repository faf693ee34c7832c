package controlplane

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"
	"k8s.io/apiserver/pkg/audit/policy"
	"sigs.k8s.io/yaml"
)

// Audit is the API server's audit log (spec.api.audit).
type Audit struct {
	// Path is the log file; empty switches auditing off.
	Path string
	// Policy is the user's policy file; empty means DefaultAuditPolicy.
	Policy                            string
	MaxSizeMB, MaxBackups, MaxAgeDays int
	// Webhook is a kubeconfig for a remote sink, or empty.
	Webhook string
}

// DefaultAuditPolicy records who did what without the noise a cluster
// makes by itself every few seconds, and never the content of a Secret:
//   - no health checks, discovery, metrics, leases (node heartbeats and
//     leader election) or events;
//   - Secrets, ConfigMaps, service-account tokens and token reviews at
//     Metadata: who touched which object, not what it holds;
//   - other reads at Metadata; other writes at Request (the body sent).
func DefaultAuditPolicy() *auditv1.Policy {
	return &auditv1.Policy{
		TypeMeta: metav1.TypeMeta{APIVersion: "audit.k8s.io/v1", Kind: "Policy"},
		// The same request is logged again at ResponseComplete.
		OmitStages:        []auditv1.Stage{auditv1.StageRequestReceived},
		OmitManagedFields: true,
		Rules: []auditv1.PolicyRule{
			{Level: auditv1.LevelNone, NonResourceURLs: []string{
				"/healthz*", "/livez*", "/readyz*", "/version", "/metrics", "/openapi/*", "/api", "/api/*", "/apis", "/apis/*",
			}},
			{Level: auditv1.LevelNone, Resources: []auditv1.GroupResources{{Group: "coordination.k8s.io", Resources: []string{"leases"}}}},
			{Level: auditv1.LevelNone, Resources: []auditv1.GroupResources{{Group: "", Resources: []string{"events"}}, {Group: "events.k8s.io", Resources: []string{"events"}}}},
			{Level: auditv1.LevelMetadata, Resources: []auditv1.GroupResources{
				{Group: "", Resources: []string{"secrets", "configmaps", "serviceaccounts/token"}},
				{Group: "authentication.k8s.io", Resources: []string{"tokenreviews"}},
			}},
			{Level: auditv1.LevelMetadata, Verbs: []string{"get", "list", "watch"}},
			{Level: auditv1.LevelRequest},
		},
	}
}

// writeAuditPolicy checks the user's policy, or writes ours to path, and
// returns the file the API server reads. A policy the API server would
// refuse is refused here, naming the field it came from.
func writeAuditPolicy(path string, audit Audit) (string, error) {
	// The log holds who did what to which Secret: root's only.
	if err := os.MkdirAll(filepath.Dir(audit.Path), 0o700); err != nil {
		return "", fmt.Errorf("create audit log dir: %w", err)
	}
	if audit.Policy != "" {
		if _, err := policy.LoadPolicyFromFile(audit.Policy); err != nil {
			return "", fmt.Errorf("spec.api.audit.policy %s: %w", audit.Policy, err)
		}
		return audit.Policy, nil
	}
	out, err := yaml.Marshal(DefaultAuditPolicy())
	if err != nil {
		return "", fmt.Errorf("encode audit policy: %w", err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return "", fmt.Errorf("write audit policy: %w", err)
	}
	return path, nil
}

// args are the kube-apiserver flags of the audit log.
func (a Audit) args(policyFile string) Args {
	args := Args{
		"audit-policy-file":   policyFile,
		"audit-log-path":      a.Path,
		"audit-log-format":    "json",
		"audit-log-maxsize":   strconv.Itoa(a.MaxSizeMB),
		"audit-log-maxbackup": strconv.Itoa(a.MaxBackups),
		"audit-log-maxage":    strconv.Itoa(a.MaxAgeDays),
	}
	if a.Webhook != "" {
		args["audit-webhook-config-file"] = a.Webhook
		args["audit-webhook-mode"] = "batch"
	}
	return args
}
