package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

type nodeReport struct {
	StartToNodeReady durations      `json:"start_to_node_ready"`
	StartToFirstPod  durations      `json:"start_to_first_pod_running"`
	StartToAddonsUp  durations      `json:"start_to_addons_ready"`
	IdleRSSMiB       float64        `json:"idle_rss_mib_server_plus_worker"`
	AddonPodsMemMiB  map[string]int `json:"addon_pods_working_set_mib"`
	IdleAfterSeconds int            `json:"idle_after_seconds"`
	// A pod created once the node idles runs code start-up did not keep
	// resident: what releasing start-up pages costs a later pod.
	PodAfterIdleMS float64 `json:"pod_after_idle_create_to_running_ms"`
}

// addonDeployments are the bundled add-ons that run as pods.
var addonDeployments = []string{"coredns", "metrics-server", "traefik"}

// TestNodeNumbers starts a fresh `server --enable-worker` node N times
// (MONOKUBE_BENCH_RUNS, default 3) in its own namespaces and measures start
// → Node Ready and start → first pod Running (image from the images dir),
// then RSS after MONOKUBE_BENCH_NODE_IDLE seconds (default 60).
// MONOKUBE_BENCH_SPEC is YAML added under the config's spec, for A/B runs
// (for example with add-ons turned off).
func TestNodeNumbers(t *testing.T) {
	if testing.Short() || envInt("MONOKUBE_BENCH", 0) == 0 {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench`)")
	}
	runs := envInt("MONOKUBE_BENCH_RUNS", 3)
	idle := envInt("MONOKUBE_BENCH_NODE_IDLE", 60)
	var ready, firstPod, addonsUp []time.Duration
	var last *harness.Node
	for i := range runs {
		node := staticPodNode(t)
		start := startTimed(t, node)
		client := start.client
		ready = append(ready, start.ready)
		firstPod = append(firstPod, start.firstPod)
		harness.Poll(t, 3*time.Minute, "add-ons available", func(ctx context.Context) (bool, error) {
			for _, name := range addonDeployments {
				if _, err := os.Stat(filepath.Join(node.DataDir, "manifests", name+".yaml")); err != nil {
					continue // turned off
				}
				d, err := client.AppsV1().Deployments("kube-system").Get(ctx, name, metav1.GetOptions{})
				if err != nil || d.Status.AvailableReplicas < 1 {
					return false, nil
				}
			}
			return true, nil
		})
		addonsUp = append(addonsUp, time.Since(start.began))
		last = node
		if i < runs-1 {
			node.Kill()
		}
	}
	time.Sleep(time.Duration(idle) * time.Second)
	report := nodeReport{
		StartToNodeReady: summarize(ready),
		StartToFirstPod:  summarize(firstPod),
		StartToAddonsUp:  summarize(addonsUp),
		IdleRSSMiB:       rssMiB(t, last.PID()),
		AddonPodsMemMiB:  addonMemory(t, last),
		IdleAfterSeconds: idle,
	}
	report.PodAfterIdleMS = ms(runPodBatch(t, unlimitedClient(t, last), "after-idle", 1, 0).startup[0])
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
}

func isReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// addonMemory is each kube-system pod's working set as metrics-server
// reports it (what `kubectl top pods` shows).
func addonMemory(t *testing.T, node *harness.Node) map[string]int {
	out, err := node.Kubectl("top", "pods", "-n", "kube-system", "--no-headers")
	if err != nil {
		t.Logf("kubectl top pods: %v\n%s", err, out)
		return nil
	}
	memory := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var name, cpu string
		var mib int
		if _, err := fmt.Sscanf(line, "%s %s %dMi", &name, &cpu, &mib); err == nil {
			memory[name] = mib
		}
	}
	return memory
}
