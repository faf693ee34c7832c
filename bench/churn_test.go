package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

type churnReport struct {
	Pods            int     `json:"pods"`
	AllRunningMS    float64 `json:"create_to_all_running_ms"`
	StartupP50MS    float64 `json:"pod_startup_p50_ms"`
	StartupP99MS    float64 `json:"pod_startup_p99_ms"`
	StartupMaxMS    float64 `json:"pod_startup_max_ms"`
	AllDeletedMS    float64 `json:"delete_to_all_gone_ms"`
	OverSLO5s       int     `json:"pods_over_5s"`
	ServerRSSMiBEnd float64 `json:"node_rss_mib_after"`
}

// TestPodChurnNumbers creates MONOKUBE_BENCH_PODS (default 100) pods of a
// local image at once on a single `server --enable-worker` node and
// measures each pod's create → Running latency (the SIG
// Scalability pod-startup SLO is p99 ≤ 5 s) and the wall time until all
// run; then deletes them all and measures until none is left.
func TestPodChurnNumbers(t *testing.T) {
	if envInt("MONOKUBE_BENCH", 0) == 0 {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench`)")
	}
	count := envInt("MONOKUBE_BENCH_PODS", 100)
	network := harness.NewNetwork(t)
	node := harness.NewNode(t, network, 1, "")
	harness.WriteBusyboxArchive(t, filepath.Join(node.DataDir, "images"))
	node.StartReady()
	client := unlimitedClient(t, node)
	ctx := context.Background()
	harness.Poll(t, 3*time.Minute, "node Ready", func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		return err == nil && isReady(n), nil
	})
	if _, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		harness.Poll(t, time.Minute, "default service account", func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
			return err == nil, nil
		})
	}

	began := time.Now()
	created := map[string]time.Time{}
	var mu sync.Mutex
	var creates sync.WaitGroup
	for i := range count {
		name := fmt.Sprintf("churn-%03d", i)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": "churn"}},
			Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: new(int64),
				Containers: []corev1.Container{{Name: "c", Image: harness.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command: []string{"sleep", "3600"}}},
			},
		}
		creates.Add(1)
		go func() {
			defer creates.Done()
			mu.Lock()
			created[name] = time.Now()
			mu.Unlock()
			if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Errorf("create %s: %v", name, err)
			}
		}()
	}
	// Each pod's latency runs from its create call to the first list that
	// shows it Running; lists every 100 ms bound the error.
	running := map[string]time.Duration{}
	harness.Poll(t, 10*time.Minute, fmt.Sprintf("%d pods Running", count), func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "bench=churn"})
		if err != nil {
			return false, nil
		}
		seen := time.Now()
		mu.Lock()
		defer mu.Unlock()
		for _, pod := range pods.Items {
			if _, done := running[pod.Name]; !done && pod.Status.Phase == corev1.PodRunning {
				running[pod.Name] = seen.Sub(created[pod.Name])
			}
		}
		return len(running) == count, nil
	})
	creates.Wait()
	report := churnReport{Pods: count, AllRunningMS: float64(time.Since(began).Milliseconds())}
	var latencies []time.Duration
	for _, latency := range running {
		latencies = append(latencies, latency)
		if latency > 5*time.Second {
			report.OverSLO5s++
		}
	}
	slices.Sort(latencies)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	report.StartupP50MS = ms(latencies[len(latencies)/2])
	report.StartupP99MS = ms(latencies[(len(latencies)*99)/100-1])
	report.StartupMaxMS = ms(latencies[len(latencies)-1])

	began = time.Now()
	if err := client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{LabelSelector: "bench=churn"}); err != nil {
		t.Fatal(err)
	}
	harness.Poll(t, 10*time.Minute, "all pods gone", func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "bench=churn"})
		return err == nil && len(pods.Items) == 0, nil
	})
	report.AllDeletedMS = float64(time.Since(began).Milliseconds())
	report.ServerRSSMiBEnd = rssMiB(t, node.PID())
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
}
