package controlplane

import (
	"encoding/json"
	"fmt"
	"os"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	podsecurityv1 "k8s.io/pod-security-admission/admission/api/v1"
	"sigs.k8s.io/yaml"
)

// PodSecurityLevels are the cluster-wide Pod Security Standards defaults for
// namespaces without their own pod-security.kubernetes.io labels.
type PodSecurityLevels struct {
	Enforce, Audit, Warn string
}

// writeAdmissionConfig configures the PodSecurity admission plugin, and
// EventRateLimit under the CIS profile. kube-system is exempt: the
// cluster's own system pods need host access.
func writeAdmissionConfig(path string, levels PodSecurityLevels, cis bool) error {
	podSecurity, err := json.Marshal(podsecurityv1.PodSecurityConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "pod-security.admission.config.k8s.io/v1", Kind: "PodSecurityConfiguration"},
		Defaults: podsecurityv1.PodSecurityDefaults{
			Enforce: levels.Enforce, EnforceVersion: "latest",
			Audit: levels.Audit, AuditVersion: "latest",
			Warn: levels.Warn, WarnVersion: "latest",
		},
		Exemptions: podsecurityv1.PodSecurityExemptions{Namespaces: []string{metav1.NamespaceSystem}},
	})
	if err != nil {
		return fmt.Errorf("encode pod security config: %w", err)
	}
	admission := apiserverv1.AdmissionConfiguration{
		TypeMeta: metav1.TypeMeta{APIVersion: "apiserver.config.k8s.io/v1", Kind: "AdmissionConfiguration"},
		Plugins: []apiserverv1.AdmissionPluginConfiguration{{
			Name:          "PodSecurity",
			Configuration: &runtime.Unknown{Raw: podSecurity, ContentType: runtime.ContentTypeJSON},
		}},
	}
	if cis {
		plugin, err := eventRateLimitPlugin()
		if err != nil {
			return err
		}
		admission.Plugins = append(admission.Plugins, plugin)
	}
	out, err := yaml.Marshal(admission)
	if err != nil {
		return fmt.Errorf("encode admission config: %w", err)
	}
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return fmt.Errorf("write admission config: %w", err)
	}
	return nil
}
