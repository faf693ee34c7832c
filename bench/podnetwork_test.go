package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestPodNetworkNumbers measures pod-to-pod throughput between two nodes
// (a server that is a node and a worker on one network) with each flannel
// backend: a pod on the server streams 1 GiB to a pod on the worker,
// MONOKUBE_BENCH_RUNS times (default 3), and the median MiB/s is printed.
func TestPodNetworkNumbers(t *testing.T) {
	if envInt("MONOKUBE_BENCH", 0) == 0 {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench`)")
	}
	runs := envInt("MONOKUBE_BENCH_RUNS", 3)
	report := map[string]float64{}
	for _, backend := range []string{"vxlan", "wireguard"} {
		report[backend+"_pod_to_pod_mib_per_s"] = podToPodMBps(t, backend, runs)
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
}

func podToPodMBps(t *testing.T, backend string, runs int) float64 {
	c := harness.NewCluster(t, "  network:\n    flannel:\n      backend: "+backend+"\n")
	c.Server.StartReady()
	worker := c.AddWorker()
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(c.All()...)
	pod := func(name, node, script string) *corev1.Pod {
		c.Server.Apply(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: default}
spec:
  nodeName: %s
  containers:
  - name: main
    image: %s
    command: [sh, -c, '%s']
`, name, node, harness.BusyboxImage, script))
		return harness.WaitPhase(t, c.Client(), "default", name, corev1.PodRunning)
	}
	sink := pod("sink", worker.Name, "exec nc -ll -p 9000 -e dd of=/dev/null bs=1M iflag=fullblock")
	pod("source", c.Server.Name, "sleep 1d")
	// Busybox's dd reports no rate: time the whole exec, less the same
	// exec streaming nothing (kubectl's round trip and the connect).
	stream := func(mib int) time.Duration {
		began := time.Now()
		c.Server.MustKubectl("exec", "source", "--", "sh", "-c",
			fmt.Sprintf("dd if=/dev/zero bs=1M count=%d 2>/dev/null | nc %s 9000", mib, sink.Status.PodIP))
		return time.Since(began)
	}
	const size = 1024
	var rates []float64
	for range runs {
		empty := stream(0)
		full := stream(size)
		rates = append(rates, size/(full-empty).Seconds())
	}
	// Every full stream arrived whole (the sink's dd counts MiB).
	harness.Poll(t, 30*time.Second, "the sink received every stream", func(context.Context) (bool, error) {
		logs, err := c.Server.Kubectl("logs", "sink")
		return err == nil && strings.Count(logs, fmt.Sprintf("%d+0 records in", size)) == runs, nil
	})
	slices.Sort(rates)
	t.Logf("%s: pod to pod across nodes %.0f MiB/s", backend, rates)
	c.Server.Kill()
	worker.Kill()
	return rates[len(rates)/2]
}
