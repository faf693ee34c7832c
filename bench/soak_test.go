package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

type soakReport struct {
	Mode          string  `json:"mode"`
	Starts        int     `json:"starts"`
	NeverReady    int     `json:"never_ready"`
	Over30s       int     `json:"over_30s"`
	P50MS         float64 `json:"p50_ms"`
	P99MS         float64 `json:"p99_ms"`
	MaxMS         float64 `json:"max_ms"`
	CPUHogs       int     `json:"cpu_hogs"`
	CSINodeErrors int     `json:"starts_logging_failed_to_initialize_csinode"`
	EmptyName     int     `json:"starts_logging_empty_resource_name"`
}

// TestStartSoak starts a single `server --enable-worker` node
// MONOKUBE_SOAK_RUNS times (default 10) from a fresh data dir, restarts one
// node as many times on its data dir, and starts MONOKUBE_SOAK_CLUSTERS
// (default 5) fresh 3-node clusters (the workers as soon as the server can
// make a token), with one CPU-burning process per core beside them all
// (MONOKUBE_SOAK_HOGS, default 2). Every start must reach Node Ready within
// 3 minutes; the report counts those that did not, those over 30 s, and
// starts whose log shows the kubelet's CSINode initialisation failing.
func TestStartSoak(t *testing.T) {
	if envInt("MONOKUBE_BENCH", 0) == 0 {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench`)")
	}
	runs := envInt("MONOKUBE_SOAK_RUNS", 10)
	clusters := envInt("MONOKUBE_SOAK_CLUSTERS", 5)
	hogs := envInt("MONOKUBE_SOAK_HOGS", 2)
	for range hogs {
		hog := exec.Command("sh", "-c", "while :; do :; done")
		if err := hog.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = hog.Process.Kill(); _ = hog.Wait() })
	}
	network := harness.NewNetwork(t)
	fresh := soakReport{Mode: "single node, fresh data dir", CPUHogs: hogs}
	var samples []time.Duration
	for i := range runs {
		// A subtest per start, so each node and its data dir are gone
		// before the next: fifty data dirs with images would fill a disk.
		t.Run(fmt.Sprint("fresh", i), func(t *testing.T) {
			samples = append(samples, soakStart(t, harness.NewNode(t, network, i%200+2, ""), &fresh))
		})
	}
	fresh.summarize(samples)

	warm := soakReport{Mode: "single node, warm restart", CPUHogs: hogs}
	samples = nil
	node := harness.NewNode(t, network, 1, "")
	node.StartReady()
	for i := range runs {
		node.Kill()
		t.Logf("warm restart %d", i)
		samples = append(samples, soakStart(t, node, &warm))
	}
	node.Kill()
	warm.summarize(samples)

	three := soakReport{Mode: "3-node cluster, fresh", CPUHogs: hogs}
	samples = nil
	for i := range clusters {
		t.Run(fmt.Sprint("cluster", i), func(t *testing.T) {
			samples = append(samples, soakCluster(t, &three))
		})
	}
	three.summarize(samples)
	out, _ := json.MarshalIndent([]soakReport{fresh, warm, three}, "", "  ")
	fmt.Println(string(out))
}

// soakCluster starts a server (with a worker) and, once it can make a
// token, two workers; it returns the time from the server's start to all
// three Nodes Ready.
func soakCluster(t *testing.T, report *soakReport) time.Duration {
	t.Helper()
	c := harness.NewCluster(t, "")
	began := time.Now()
	c.Server.Start()
	report.Starts++
	c.Server.WaitReady(3 * time.Minute)
	token := c.Token("--expiry=10m")
	for range 2 {
		c.AddWorker().StartWorker(token)
	}
	took := 3 * time.Minute
	ready := harness.PollOK(3*time.Minute, func(ctx context.Context) (bool, error) {
		for _, node := range c.All() {
			n, err := c.Client().CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
			if err != nil || !isReady(n) {
				return false, nil
			}
		}
		return true, nil
	})
	if ready {
		took = time.Since(began)
	} else {
		report.NeverReady++
		t.Errorf("cluster start %d: not every node Ready", report.Starts)
	}
	for _, node := range c.All() {
		report.countLogErrors(node.Log())
	}
	return took
}

// soakStart starts node and returns the time to Node Ready; a start that
// never gets there counts in the report with the 3-minute bound.
func soakStart(t *testing.T, node *harness.Node, report *soakReport) time.Duration {
	t.Helper()
	logBefore := len(node.Log())
	began := time.Now()
	node.Start()
	report.Starts++
	node.WaitReady(3 * time.Minute)
	client := node.Client()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	took := 3 * time.Minute
	for ctx.Err() == nil {
		n, err := client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		if err == nil && isReady(n) {
			took = time.Since(began)
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if ctx.Err() != nil {
		report.NeverReady++
		t.Errorf("start %d: node never Ready", report.Starts)
	}
	report.countLogErrors(node.Log()[logBefore:])
	return took
}

func (r *soakReport) countLogErrors(log string) {
	if strings.Contains(log, "Failed to initialize CSINode") {
		r.CSINodeErrors++
	}
	if strings.Contains(log, "resource name may not be empty") {
		r.EmptyName++
	}
}

func (r *soakReport) summarize(samples []time.Duration) {
	if len(samples) == 0 {
		return
	}
	slices.Sort(samples)
	ms := func(d time.Duration) float64 { return float64(d.Milliseconds()) }
	for _, s := range samples {
		if s > 30*time.Second {
			r.Over30s++
		}
	}
	r.P50MS = ms(samples[len(samples)/2])
	r.P99MS = ms(samples[(len(samples)*99)/100])
	r.MaxMS = ms(samples[len(samples)-1])
}
