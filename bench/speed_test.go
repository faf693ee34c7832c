package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/test/harness"
)

// speedFigure is one row of the speed issue's table: the samples' spread
// and the goal it is held against.
type speedFigure struct {
	Name   string    `json:"name"`
	Unit   string    `json:"unit"`
	Min    float64   `json:"min"`
	Median float64   `json:"median"`
	Max    float64   `json:"max"`
	Goal   string    `json:"goal"`
	Met    bool      `json:"met"`
	Values []float64 `json:"values"`
}

// figure summarizes samples against goal (0: none); below says whether the
// goal is an upper bound (times, memory) or a lower one (throughput).
func figure(name, unit string, samples []float64, goal float64, below bool) speedFigure {
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	f := speedFigure{Name: name, Unit: unit, Values: samples}
	if len(sorted) == 0 {
		return f
	}
	f.Min, f.Median, f.Max = sorted[0], sorted[len(sorted)/2], sorted[len(sorted)-1]
	switch {
	case goal == 0:
		f.Met = true
	case below:
		f.Goal, f.Met = fmt.Sprintf("< %g", goal), f.Median < goal
	default:
		f.Goal, f.Met = fmt.Sprintf(">= %g", goal), f.Median >= goal
	}
	return f
}

func seconds(d time.Duration) float64 { return float64(d.Milliseconds()) / 1000 }

// TestSpeedNumbers measures every figure of the speed table
// MONOKUBE_BENCH_RUNS times (default 3), each run on fresh nodes, and
// prints one line per figure:
//
//	speed <name> min=<v> median=<v> max=<v> <unit> goal <goal> met|over
//
// then the same as JSON. It asserts nothing: the numbers are the result.
func TestSpeedNumbers(t *testing.T) {
	if testing.Short() || envInt("MONOKUBE_BENCH", 0) == 0 {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench` / `make speed`)")
	}
	runs := envInt("MONOKUBE_BENCH_RUNS", 3)
	idle := time.Duration(envInt("MONOKUBE_BENCH_NODE_IDLE", 60)) * time.Second
	pods := envInt("MONOKUBE_BENCH_PODS", 100)
	var nodeReady, firstPod, readyz, threeReady, podsRunning, creates, createP99, nodeRSS, workerRSS []float64

	for i := range runs {
		t.Run(fmt.Sprint("control-plane", i), func(t *testing.T) {
			server := harness.NewServer(t, "")
			readyz = append(readyz, seconds(timeToReady(server)))
			// The controllers' start-up work runs for seconds after
			// /readyz; the write figure is the settled server's.
			time.Sleep(10 * time.Second)
			report := writeConfigMaps(t, server, envInt("MONOKUBE_BENCH_WRITES", 2000), 8)
			creates = append(creates, report.PerSecond)
			createP99 = append(createP99, report.P99MS)
		})
	}
	for i := range runs {
		t.Run(fmt.Sprint("node", i), func(t *testing.T) {
			node := staticPodNode(t)
			start := startTimed(t, node)
			nodeReady = append(nodeReady, seconds(start.ready))
			firstPod = append(firstPod, seconds(start.firstPod))
			time.Sleep(time.Until(start.began.Add(start.ready + idle)))
			nodeRSS = append(nodeRSS, rssMiB(t, node.PID()))
			podsRunning = append(podsRunning, seconds(deploymentRunning(t, start.client, pods)))
		})
	}
	for i := range runs {
		t.Run(fmt.Sprint("cluster", i), func(t *testing.T) {
			c := harness.NewCluster(t, "")
			_, ready := startThreeNodes(t, c)
			threeReady = append(threeReady, seconds(ready))
			time.Sleep(idle)
			workerRSS = append(workerRSS, rssMiB(t, c.Workers[0].PID()))
		})
	}

	figures := []speedFigure{
		figure("node-ready", "s", nodeReady, 4, true),
		figure("first-pod-running", "s", firstPod, 5, true),
		figure("control-plane-readyz", "s", readyz, 2.5, true),
		figure("three-nodes-ready", "s", threeReady, 6, true),
		figure(fmt.Sprintf("deployment-%d-pods-running", pods), "s", podsRunning, 10, true),
		figure("api-creates-8-clients", "/s", creates, 1000, false),
		figure("api-create-p99", "ms", createP99, 30, true),
		figure("server-worker-idle-rss", "MiB", nodeRSS, 200, true),
		figure("worker-idle-rss", "MiB", workerRSS, 64, true),
	}
	if info, err := os.Stat(os.Getenv("MONOKUBE_BIN")); err == nil {
		size := float64(info.Size()) / (1 << 20)
		// No goal: the download's size is the release build's, compressed harder.
		figures = append(figures, figure("binary-as-built", "MiB", []float64{size}, 0, true))
	}
	for _, f := range figures {
		verdict := "goal " + f.Goal + " met"
		switch {
		case f.Goal == "":
			verdict = "no goal"
		case !f.Met:
			verdict = "goal " + f.Goal + " over"
		}
		fmt.Printf("speed %-30s min=%-8.4g median=%-8.4g max=%-8.4g %-4s %s\n", f.Name, f.Min, f.Median, f.Max, f.Unit, verdict)
	}
	out, _ := json.MarshalIndent(figures, "", "  ")
	fmt.Printf("SPEED %s\n", out)
}

// deploymentRunning creates a Deployment of count busybox pods and returns
// the time from its create call until a list shows all of them Running.
func deploymentRunning(t *testing.T, client kubernetes.Interface, count int) time.Duration {
	t.Helper()
	replicas := int32(count)
	grace := int64(0)
	labels := map[string]string{"bench": "speed"}
	deployment := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "speed"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					Containers: []corev1.Container{{Name: "c", Image: harness.BusyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
						Command: []string{"sleep", "3600"}}},
				},
			},
		},
	}
	began := time.Now()
	if _, err := client.AppsV1().Deployments("default").Create(context.Background(), deployment, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	harness.Poll(t, 10*time.Minute, fmt.Sprintf("%d pods Running", count), func(ctx context.Context) (bool, error) {
		list, err := client.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "bench=speed"})
		if err != nil {
			return false, nil
		}
		running := 0
		for _, pod := range list.Items {
			if pod.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == count, nil
	})
	return time.Since(began)
}
