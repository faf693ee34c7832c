// Package gateway runs the Gateway API project's own conformance suite
// against a monokube node and its bundled Traefik (`make
// conformance-gateway`): no registry, the suite's images built by our build.
package gateway

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/monokube/monokube/test/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// supportedFeatures are the extended features Traefik claims in its own
// published report (gateway-api conformance/reports, Traefik v3.5 against
// v1.3.0); the suite runs their tests beside the core ones.
var supportedFeatures = []string{
	"GatewayPort8080",
	"HTTPRouteBackendProtocolH2C",
	"HTTPRouteBackendProtocolWebSocket",
	"HTTPRouteDestinationPortMatching",
	"HTTPRouteHostRewrite",
	"HTTPRouteMethodMatching",
	"HTTPRoutePathRedirect",
	"HTTPRoutePathRewrite",
	"HTTPRoutePortRedirect",
	"HTTPRouteQueryParamMatching",
	"HTTPRouteResponseHeaderModification",
	"HTTPRouteSchemeRedirect",
}

// TestGatewayAPIConformance starts one node (server --enable-worker) with
// the suite's images in its images dir, gives Traefik the entry point on
// 8080 the GatewayPort8080 tests use, and runs the suite's test binary
// (built by make from tools/gatewayconformance) against it. The report goes
// to docs/gateway-api-conformance-report.yaml.
func TestGatewayAPIConformance(t *testing.T) {
	dir := os.Getenv("MONOKUBE_GATEWAY_CONFORMANCE")
	if dir == "" {
		t.Skip("run `make conformance-gateway`")
	}
	network := harness.NewNetwork(t)
	node := harness.NewNode(t, network, 1, "")
	archives, _ := filepath.Glob(filepath.Join(dir, "images", "*.tar"))
	if err := os.MkdirAll(filepath.Join(node.DataDir, "images"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, archive := range archives {
		if err := copyFile(archive, filepath.Join(node.DataDir, "images", filepath.Base(archive))); err != nil {
			t.Fatal(err)
		}
	}
	node.StartReady()
	client := node.Client()
	node.Apply(`
apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata: {name: traefik, namespace: kube-system}
spec:
  valuesContent: |-
    extraPorts: [{name: web8080, port: 8080}]
`)
	harness.Poll(t, 3*time.Minute, "Traefik with an entry point on 8080 available", func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments("kube-system").Get(ctx, "traefik", metav1.GetOptions{})
		return err == nil && d.Status.UpdatedReplicas >= 1 && d.Status.AvailableReplicas >= 1 && d.Status.UnavailableReplicas == 0 &&
			strings.Contains(strings.Join(d.Spec.Template.Spec.Containers[0].Args, " "), "web8080"), nil
	})

	report, err := filepath.Abs("../../docs/gateway-api-conformance-report.yaml")
	if err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(t.TempDir(), "suite.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	began := time.Now()
	suite := exec.Command(filepath.Join(dir, "conformance.test"),
		"-test.run", "^TestConformance$", "-test.v", "-test.timeout", "80m",
		"--gateway-class=traefik",
		"--conformance-profiles=GATEWAY-HTTP,GATEWAY-GRPC",
		"--supported-features="+strings.Join(supportedFeatures, ","),
		"--report-output="+report,
		"--organization=monokube", "--project=monokube-traefik", "--url=https://github.com/monokube/monokube",
		"--version=monokube with Traefik v3.6.12", "--contact=@monokube/maintainers",
	)
	suite.Env = append(os.Environ(), "KUBECONFIG="+node.AdminKubeconfig())
	suite.Stdout = io.MultiWriter(logFile, prefixed(os.Stdout))
	suite.Stderr = suite.Stdout
	runErr := suite.Run()
	t.Logf("the suite took %s; its log: %s", time.Since(began).Round(time.Second), logPath)
	summarize(t, report)
	if runErr != nil {
		t.Errorf("the conformance suite failed: %v (failing tests are listed above and in %s)", runErr, report)
	}
}

// summarize prints each profile's counts from the suite's report.
func summarize(t *testing.T, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("no conformance report: %v", err)
		return
	}
	var report struct {
		Profiles []struct {
			Name string `json:"name"`
			Core struct {
				Result      string         `json:"result"`
				Statistics  map[string]int `json:"statistics"`
				FailedTests []string       `json:"failedTests"`
			} `json:"core"`
			Extended struct {
				Result      string         `json:"result"`
				Statistics  map[string]int `json:"statistics"`
				FailedTests []string       `json:"failedTests"`
			} `json:"extended"`
		} `json:"profiles"`
	}
	if err := yaml.Unmarshal(raw, &report); err != nil {
		t.Errorf("read conformance report: %v", err)
		return
	}
	for _, p := range report.Profiles {
		fmt.Printf("%s core: %s, passed %d, failed %d, skipped %d %v\n", p.Name, p.Core.Result,
			p.Core.Statistics["Passed"], p.Core.Statistics["Failed"], p.Core.Statistics["Skipped"], p.Core.FailedTests)
		if p.Extended.Result != "" {
			fmt.Printf("%s extended: %s, passed %d, failed %d, skipped %d %v\n", p.Name, p.Extended.Result,
				p.Extended.Statistics["Passed"], p.Extended.Statistics["Failed"], p.Extended.Statistics["Skipped"], p.Extended.FailedTests)
		}
	}
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// prefixed marks the suite's lines in the test's output.
func prefixed(w io.Writer) io.Writer { return &prefixWriter{w: w, start: true} }

type prefixWriter struct {
	w     io.Writer
	start bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	for _, line := range strings.SplitAfter(string(b), "\n") {
		if line == "" {
			continue
		}
		if p.start {
			if _, err := io.WriteString(p.w, "suite| "); err != nil {
				return 0, err
			}
		}
		if _, err := io.WriteString(p.w, line); err != nil {
			return 0, err
		}
		p.start = strings.HasSuffix(line, "\n")
	}
	return len(b), nil
}
