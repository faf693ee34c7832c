package controlplane

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	auditinternal "k8s.io/apiserver/pkg/apis/audit"
	"k8s.io/apiserver/pkg/audit/policy"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	apiserveroptions "k8s.io/kubernetes/cmd/kube-apiserver/app/options"
)

// The default policy as the API server reads it, asked by upstream's own
// evaluator what it records of typical requests.
func TestDefaultAuditPolicyLevels(t *testing.T) {
	dir := t.TempDir()
	file, err := writeAuditPolicy(filepath.Join(dir, "audit-policy.yaml"), Audit{Path: filepath.Join(dir, "logs", "audit.log")})
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := policy.LoadPolicyFromFile(file)
	if err != nil {
		t.Fatal(err)
	}
	evaluator := policy.NewPolicyRuleEvaluator(loaded)
	admin := &user.DefaultInfo{Name: "admin", Groups: []string{"system:masters"}}
	node := &user.DefaultInfo{Name: "system:node:n1", Groups: []string{"system:nodes"}}
	resource := func(who user.Info, verb, group, resource string) authorizer.AttributesRecord {
		return authorizer.AttributesRecord{User: who, Verb: verb, Namespace: "default", APIGroup: group, APIVersion: "v1", Resource: resource, ResourceRequest: true}
	}
	cases := []struct {
		name  string
		attrs authorizer.AttributesRecord
		want  auditinternal.Level
	}{
		{"a Secret created: who and which, not its data", resource(admin, "create", "", "secrets"), auditinternal.LevelMetadata},
		{"a Secret read", resource(node, "get", "", "secrets"), auditinternal.LevelMetadata},
		{"a ConfigMap updated", resource(admin, "update", "", "configmaps"), auditinternal.LevelMetadata},
		{"a token review", resource(admin, "create", "authentication.k8s.io", "tokenreviews"), auditinternal.LevelMetadata},
		{"a pod created: the body too", resource(admin, "create", "", "pods"), auditinternal.LevelRequest},
		{"a Deployment patched", resource(admin, "patch", "apps", "deployments"), auditinternal.LevelRequest},
		{"pods listed", resource(admin, "list", "", "pods"), auditinternal.LevelMetadata},
		{"a node's heartbeat", resource(node, "update", "coordination.k8s.io", "leases"), auditinternal.LevelNone},
		{"an event", resource(node, "create", "", "events"), auditinternal.LevelNone},
		{"a readiness probe", authorizer.AttributesRecord{User: admin, Verb: "get", Path: "/readyz"}, auditinternal.LevelNone},
		{"a health check with its checks listed", authorizer.AttributesRecord{User: admin, Verb: "get", Path: "/livez/ping"}, auditinternal.LevelNone},
	}
	for _, tc := range cases {
		if got := evaluator.EvaluatePolicyRule(tc.attrs).Level; got != tc.want {
			t.Errorf("%s: level %s, want %s", tc.name, got, tc.want)
		}
	}
	if info, err := os.Stat(filepath.Join(dir, "logs")); err != nil || info.Mode().Perm() != 0o700 {
		t.Errorf("the audit log's dir: %v, want mode 0700 (%v)", info, err)
	}
}

func TestAuditFlagsAreTheAPIServers(t *testing.T) {
	a := testAPIServer(nil)
	a.Audit = Audit{Path: "/data/logs/audit.log", MaxSizeMB: 100, MaxBackups: 10, MaxAgeDays: 30, Webhook: "/etc/audit-webhook.conf"}
	a.auditPolicy = "/data/pki/audit-policy.yaml"
	args := a.args()
	for flag, value := range map[string]string{
		"audit-log-path": "/data/logs/audit.log", "audit-policy-file": "/data/pki/audit-policy.yaml",
		"audit-log-maxsize": "100", "audit-log-maxbackup": "10", "audit-log-maxage": "30",
		"audit-webhook-config-file": "/etc/audit-webhook.conf",
	} {
		if args[flag] != value {
			t.Errorf("--%s = %q, want %q", flag, args[flag], value)
		}
	}
	if err := applyFlags(apiserveroptions.NewServerRunOptions().Flags(), args, "spec.api.extraArgs"); err != nil {
		t.Fatalf("kube-apiserver refuses the audit flags: %v", err)
	}
	if _, on := testAPIServer(nil).args()["audit-log-path"]; on {
		t.Error("the audit log is off unless asked for")
	}
}

func TestABrokenAuditPolicyNamesTheField(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "policy.yaml")
	if err := os.WriteFile(broken, []byte("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := writeAuditPolicy(filepath.Join(dir, "audit-policy.yaml"), Audit{Path: filepath.Join(dir, "audit.log"), Policy: broken})
	if err == nil || !strings.Contains(err.Error(), "spec.api.audit.policy "+broken) {
		t.Fatalf("error = %v, want one naming spec.api.audit.policy and the file", err)
	}
}
