package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// loadResult is what one load run measured.
type loadResult struct {
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	PerSec   float64 `json:"requests_per_s"`
	P50MS    float64 `json:"p50_ms"`
	P99MS    float64 `json:"p99_ms"`
}

type ingressReport struct {
	ThroughIngress loadResult `json:"through_ingress"`
	StraightToPod  loadResult `json:"straight_to_pod"`
	ApplyToFirst   float64    `json:"ingress_apply_to_first_200_ms"`
	TraefikMemMiB  int        `json:"traefik_working_set_mib_after_load"`
	Clients        int        `json:"clients"`
	Seconds        int        `json:"seconds_each"`
}

// TestIngressNumbers measures one node's bundled Traefik: how soon an
// Ingress answers after kubectl apply, and requests/s and latency through
// it (node IP, port 80, Host header) against straight to the pod's IP,
// from a load generator in the node's own network namespace (the pod IP
// is routed only there) with MONOKUBE_BENCH_CLIENTS (default 8) clients
// for MONOKUBE_BENCH_SECONDS (default 15) each. The backend is busybox
// httpd, a process per connection: both paths pay it.
func TestIngressNumbers(t *testing.T) {
	if envInt("MONOKUBE_BENCH", 0) == 0 {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench`)")
	}
	report := ingressReport{Clients: envInt("MONOKUBE_BENCH_CLIENTS", 8), Seconds: envInt("MONOKUBE_BENCH_SECONDS", 15)}
	c := harness.NewCluster(t, "")
	node := c.Server
	node.StartReady()
	client := node.Client()
	harness.Poll(t, 3*time.Minute, "Traefik available", func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments("kube-system").Get(ctx, "traefik", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas >= 1, nil
	})
	node.Apply(`apiVersion: v1
kind: Pod
metadata: {name: web, labels: {app: web}}
spec:
  containers:
  - name: c
    image: ` + harness.BusyboxImage + `
    command: [sh, -c, "mkdir -p /www && echo bench-ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`)
	pod := harness.WaitPhase(t, client, "default", "web", corev1.PodRunning)
	applied := time.Now()
	node.Apply(`apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  rules:
  - host: bench.test
    http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}
`)
	harness.Poll(t, time.Minute, "the Ingress answers", func(context.Context) (bool, error) {
		return strings.Contains(harness.HostGet(context.Background(), "http", node.IP, "bench.test", nil), "bench-ok"), nil
	})
	report.ApplyToFirst = float64(time.Since(applied).Milliseconds())

	report.ThroughIngress = loadFrom(t, node, "http://"+node.IP+"/", "bench.test", report.Clients, report.Seconds)
	report.StraightToPod = loadFrom(t, node, "http://"+pod.Status.PodIP+":8080/", "", report.Clients, report.Seconds)
	if out, err := node.Kubectl("top", "pod", "-n", "kube-system", "-l", "app.kubernetes.io/name=traefik", "--no-headers"); err == nil {
		fields := strings.Fields(out)
		if len(fields) >= 3 {
			fmt.Sscanf(fields[2], "%dMi", &report.TraefikMemMiB)
		}
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
}

// loadFrom runs the load generator (this test binary, TestLoadHelper) in
// the node's network namespace against url.
func loadFrom(t *testing.T, node *harness.Node, url, host string, clients, seconds int) loadResult {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", node.NetNS, os.Args[0], "-test.run", "^TestLoadHelper$")
	cmd.Env = append(os.Environ(), "MONOKUBE_LOAD_URL="+url, "MONOKUBE_LOAD_HOST="+host,
		fmt.Sprintf("MONOKUBE_LOAD_CLIENTS=%d", clients), fmt.Sprintf("MONOKUBE_LOAD_SECONDS=%d", seconds))
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("load generator: %v\n%s", err, out)
	}
	var result loadResult
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "{") {
			if err := json.Unmarshal([]byte(line), &result); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%s (Host %q): %+v", url, host, result)
	return result
}

// TestLoadHelper is the load generator loadFrom starts: closed-loop
// clients with keep-alive, each request timed.
func TestLoadHelper(t *testing.T) {
	url := os.Getenv("MONOKUBE_LOAD_URL")
	if url == "" {
		t.Skip("started by TestIngressNumbers")
	}
	clients, seconds := envInt("MONOKUBE_LOAD_CLIENTS", 8), envInt("MONOKUBE_LOAD_SECONDS", 15)
	host := os.Getenv("MONOKUBE_LOAD_HOST")
	transport := &http.Transport{MaxIdleConnsPerHost: clients, Proxy: nil}
	httpClient := &http.Client{Transport: transport, Timeout: 5 * time.Second}
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	var mu sync.Mutex
	var samples []time.Duration
	errors := 0
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if host != "" {
					req.Host = host
				}
				began := time.Now()
				resp, err := httpClient.Do(req)
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				took := time.Since(began)
				mu.Lock()
				if ok {
					samples = append(samples, took)
				} else {
					errors++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(samples)
	result := loadResult{Requests: len(samples), Errors: errors, PerSec: float64(len(samples)) / float64(seconds)}
	if len(samples) > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		result.P50MS, result.P99MS = ms(samples[len(samples)/2]), ms(samples[len(samples)*99/100])
	}
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
}
