package controlplane

import (
	"encoding/json"
	"fmt"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	apiserverv1 "k8s.io/apiserver/pkg/apis/apiserver/v1"
	eventratelimitv1alpha1 "k8s.io/kubernetes/plugin/pkg/admission/eventratelimit/apis/eventratelimit/v1alpha1"

	"github.com/monokube/monokube/internal/pki"
)

// cisAdmissionPlugins are what the CIS profile adds to the API server's
// admission chain: a cap on Events (1.2.9, a flood of them is a denial of
// service on the datastore) and no Service externalIPs (1.2.3,
// CVE-2020-8554). AlwaysPullImages (1.2.11) is left out: a cluster with no
// registry runs the images it carries, which a forced pull would break.
var cisAdmissionPlugins = []string{"EventRateLimit", "DenyServiceExternalIPs"}

// cisAPIServerArgs are the API server flags of the CIS profile besides
// admission and the audit log (spec.api.audit, raised by the profile).
func cisAPIServerArgs() Args {
	return Args{"tls-cipher-suites": strings.Join(pki.StrongCipherSuites, ",")}
}

// eventRateLimitPlugin configures EventRateLimit as RKE2's CIS profile
// does: generous for the whole server, tight per namespace.
func eventRateLimitPlugin() (apiserverv1.AdmissionPluginConfiguration, error) {
	raw, err := json.Marshal(eventratelimitv1alpha1.Configuration{
		TypeMeta: metav1.TypeMeta{APIVersion: "eventratelimit.admission.k8s.io/v1alpha1", Kind: "Configuration"},
		Limits: []eventratelimitv1alpha1.Limit{
			{Type: eventratelimitv1alpha1.ServerLimitType, QPS: 5000, Burst: 20000},
			{Type: eventratelimitv1alpha1.NamespaceLimitType, QPS: 50, Burst: 100},
		},
	})
	if err != nil {
		return apiserverv1.AdmissionPluginConfiguration{}, fmt.Errorf("encode EventRateLimit config: %w", err)
	}
	return apiserverv1.AdmissionPluginConfiguration{
		Name: "EventRateLimit", Configuration: &runtime.Unknown{Raw: raw, ContentType: runtime.ContentTypeJSON},
	}, nil
}
