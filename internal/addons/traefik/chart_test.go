package traefik

import (
	"bytes"
	"strings"
	"testing"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
)

// TestChartRendersTheParts renders the chart as the Helm controller would:
// a Deployment, a LoadBalancer Service, the default IngressClass and the
// GatewayClass, and a value from a HelmChartConfig reaches the arguments.
func TestChartRendersTheParts(t *testing.T) {
	raw, err := Archive()
	if err != nil {
		t.Fatal(err)
	}
	again, _ := Archive()
	if !bytes.Equal(raw, again) {
		t.Fatal("two archives of the chart differ; the Helm controller would upgrade at every start")
	}
	loaded, err := loader.LoadArchive(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	override := map[string]any{
		"additionalArguments": []any{"--entryPoints.web.forwardedHeaders.insecure=true"},
		"extraPorts":          []any{map[string]any{"name": "web8080", "port": 8080}},
	}
	values, err := chartutil.ToRenderValues(loaded, override, chartutil.ReleaseOptions{Name: "traefik", Namespace: "kube-system"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	rendered, err := engine.Render(loaded, values)
	if err != nil {
		t.Fatal(err)
	}
	all := ""
	for _, text := range rendered {
		all += text + "\n---\n"
	}
	for _, want := range []string{
		"kind: Deployment", "type: LoadBalancer", "kind: IngressClass", `ingressclass.kubernetes.io/is-default-class: "true"`,
		"kind: GatewayClass", "controllerName: traefik.io/gateway-controller", "kind: PodDisruptionBudget",
		"image: \"monokube.io/traefik:3.6.12\"", "readOnlyRootFilesystem: true", "runAsNonRoot: true",
		"--global.sendAnonymousUsage=false", `"--entryPoints.web.forwardedHeaders.insecure=true"`,
		"--entryPoints.web8080.address=:8080/tcp", "{name: web8080, port: 8080, targetPort: web8080, protocol: TCP}",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("rendered chart lacks %q", want)
		}
	}
	if strings.Contains(all, "--api.dashboard=true") {
		t.Error("the dashboard is on by default")
	}
}
