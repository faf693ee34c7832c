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
	"k8s.io/client-go/kubernetes"

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
	node, client := churnNode(t, "")
	batch := runPodBatch(t, client, "churn", count, 0)
	report := churnReport{
		Pods:            count,
		AllRunningMS:    ms(batch.allRunning),
		AllDeletedMS:    ms(batch.allDeleted),
		OverSLO5s:       overSLO(batch.startup),
		ServerRSSMiBEnd: rssMiB(t, node.PID()),
	}
	report.StartupP50MS, report.StartupP99MS, report.StartupMaxMS = percentiles(batch.startup)
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
}

// churnNode starts a single `server --enable-worker` node with the test
// image in its images dir and returns it with a client that is not rate
// limited, once pods can be created in the default namespace. apiExtra is
// YAML added under the config's spec.api (indented by four spaces).
func churnNode(t *testing.T, apiExtra string) (*harness.Node, kubernetes.Interface) {
	t.Helper()
	network := harness.NewNetwork(t)
	node := harness.NewNode(t, network, 1, "")
	if apiExtra != "" {
		node.WriteConfig(apiExtra, "")
	}
	harness.WriteBusyboxArchive(t, filepath.Join(node.DataDir, "images"))
	node.StartReady()
	client := unlimitedClient(t, node)
	harness.Poll(t, 3*time.Minute, "node Ready and the default service account", func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err != nil || !isReady(n) {
			return false, nil
		}
		_, err = client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	return node, client
}

type podBatch struct {
	startup    []time.Duration // each pod's create call → first list showing it Running, sorted
	allRunning time.Duration   // first create → all Running
	allDeleted time.Duration   // delete → none left
}

// runPodBatch creates count pods named <prefix>-NNN at once, waits until
// all run, deletes them all and waits until none is left. With a grace
// period of 0 the API objects go at once and the kubelet cleans up after
// them (a forced delete); with more, the container stops on SIGTERM and
// the kubelet removes each object once it has stopped, as a user's delete.
func runPodBatch(t *testing.T, client kubernetes.Interface, prefix string, count int, gracePeriod int64) podBatch {
	t.Helper()
	command := []string{"sleep", "3600"}
	if gracePeriod > 0 {
		// As PID 1, sleep would ignore SIGTERM and run out the grace period.
		command = []string{"sh", "-c", `trap "exit 0" TERM; while true; do sleep 1; done`}
	}
	ctx := context.Background()
	selector := metav1.ListOptions{LabelSelector: "bench=" + prefix}
	began := time.Now()
	created := map[string]time.Time{}
	var mu sync.Mutex
	var creates sync.WaitGroup
	for i := range count {
		name := fmt.Sprintf("%s-%03d", prefix, i)
		pod := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"bench": prefix}},
			Spec: corev1.PodSpec{
				TerminationGracePeriodSeconds: &gracePeriod,
				Containers: []corev1.Container{{Name: "c", Image: harness.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
					Command: command}},
			},
		}
		creates.Go(func() {
			mu.Lock()
			created[name] = time.Now()
			mu.Unlock()
			if _, err := client.CoreV1().Pods("default").Create(ctx, pod, metav1.CreateOptions{}); err != nil {
				t.Errorf("create %s: %v", name, err)
			}
		})
	}
	// Lists every 100 ms bound each latency's error.
	running := map[string]time.Duration{}
	harness.Poll(t, 10*time.Minute, fmt.Sprintf("%d pods Running", count), func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods("default").List(ctx, selector)
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
	batch := podBatch{allRunning: time.Since(began)}
	for _, latency := range running {
		batch.startup = append(batch.startup, latency)
	}
	slices.Sort(batch.startup)

	began = time.Now()
	if err := client.CoreV1().Pods("default").DeleteCollection(ctx, metav1.DeleteOptions{}, selector); err != nil {
		t.Fatal(err)
	}
	harness.Poll(t, 10*time.Minute, "all pods gone", func(ctx context.Context) (bool, error) {
		pods, err := client.CoreV1().Pods("default").List(ctx, selector)
		return err == nil && len(pods.Items) == 0, nil
	})
	batch.allDeleted = time.Since(began)
	return batch
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// percentiles returns p50, p99 and max of sorted samples, in ms.
func percentiles(sorted []time.Duration) (p50, p99, maximum float64) {
	if len(sorted) == 0 {
		return 0, 0, 0
	}
	p99Index := max((len(sorted)*99)/100-1, 0)
	return ms(sorted[len(sorted)/2]), ms(sorted[p99Index]), ms(sorted[len(sorted)-1])
}

// overSLO counts pods slower than the SIG Scalability pod-startup SLO.
func overSLO(startup []time.Duration) int {
	n := 0
	for _, latency := range startup {
		if latency > 5*time.Second {
			n++
		}
	}
	return n
}
