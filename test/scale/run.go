package scale

import (
	"bytes"
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// Target is the server under measurement.
type Target struct {
	// Config is an admin client configuration for it.
	Config *rest.Config
	// PID is its process, for memory and CPU.
	PID int
	// DatastoreDir holds its datastore's files (SQLite or etcd).
	DatastoreDir string
}

// Options size a run.
type Options struct {
	Nodes, PodsPerNode int
	// QPS paces the load's operations (creates, scales, rolls, deletes).
	QPS float64
	// PhaseTimeout bounds each wait for the cluster to settle.
	PhaseTimeout time.Duration
	// IdleWindow is how long the nodes' idle cost is measured, before the
	// load (0: not measured).
	IdleWindow time.Duration
	Log        func(format string, args ...any)
}

// Report is every figure of a run; Lines prints it.
type Report struct {
	Nodes int   `json:"nodes"`
	Pods  int   `json:"pods"`
	SLOs  []SLO `json:"slos"`
	// SchedulerThroughput is the most pods bound in one second.
	SchedulerThroughput float64 `json:"scheduler_throughput_pods_per_second"`
	// Calls are the slowest API calls of the run, for finding why.
	Calls             []CallLatency      `json:"slowest_calls"`
	ServerRSSMaxMiB   float64            `json:"server_rss_max_mib"`
	ServerCPUAvgCores float64            `json:"server_cpu_avg_cores"`
	IdleCPUCores      float64            `json:"idle_cpu_cores_with_nodes"`
	DatastoreMiB      float64            `json:"datastore_mib"`
	PhaseSeconds      map[string]float64 `json:"phase_seconds"`
}

// Violated is whether any SLO was not met.
func (r Report) Violated() bool {
	for _, s := range r.SLOs {
		if !s.Met() {
			return true
		}
	}
	return false
}

// Lines are the run's figures, one per line, as scripts read them.
func (r Report) Lines() []string {
	lines := []string{}
	for _, s := range r.SLOs {
		lines = append(lines, s.Line())
	}
	return append(lines,
		fmt.Sprintf("nodes=%d", r.Nodes),
		fmt.Sprintf("pods=%d", r.Pods),
		fmt.Sprintf("scheduler-throughput=%.1f", r.SchedulerThroughput),
		fmt.Sprintf("server-rss-max=%.0f", r.ServerRSSMaxMiB),
		fmt.Sprintf("server-cpu-avg=%.2f", r.ServerCPUAvgCores),
		fmt.Sprintf("idle-cpu-with-nodes=%.3f", r.IdleCPUCores),
		fmt.Sprintf("datastore-size=%.1f", r.DatastoreMiB),
	)
}

// Run registers the simulated nodes, measures their idle cost, then runs
// the load (create, scale up, roll, scale back, delete) and computes the
// SLOs over the load's API calls and pods.
func Run(ctx context.Context, target Target, opts Options) (Report, error) {
	report := Report{Nodes: opts.Nodes, PhaseSeconds: map[string]float64{}}
	config := rest.CopyConfig(target.Config)
	config.QPS, config.Burst = 1000, 2000
	config.WarningHandler = rest.NoWarnings{}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return report, err
	}
	phase := func(name string, run func() error) error {
		began := time.Now()
		opts.Log("phase %s", name)
		err := run()
		report.PhaseSeconds[name] = time.Since(began).Seconds()
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		opts.Log("phase %s done in %s", name, time.Since(began).Round(100*time.Millisecond))
		return nil
	}
	monitor := watchProcess(target.PID)
	if err := phase("register-nodes", func() error {
		if err := StartNodes(ctx, config, opts.Nodes); err != nil {
			return err
		}
		return waitFor(ctx, opts, "nodes Ready", func() (string, bool, error) {
			ready, err := readyNodes(ctx, client)
			return fmt.Sprintf("%d/%d Ready", ready, opts.Nodes), ready >= opts.Nodes, err
		})
	}); err != nil {
		return report, err
	}
	if opts.IdleWindow > 0 {
		began, _ := cpuSeconds(target.PID)
		time.Sleep(opts.IdleWindow)
		ended, _ := cpuSeconds(target.PID)
		report.IdleCPUCores = (ended - began) / opts.IdleWindow.Seconds()
	}

	before, err := scrape(ctx, client)
	if err != nil {
		return report, err
	}
	tracker, err := trackPods(ctx, client)
	if err != nil {
		return report, err
	}
	deployments := plan(opts.Nodes * opts.PodsPerNode)
	total := 0
	for _, d := range deployments {
		total += int(d.replicas)
	}
	report.Pods = total
	settled := func(what string) error {
		return waitFor(ctx, opts, what, func() (string, bool, error) {
			done, all, err := rolledOut(ctx, client)
			live, running := tracker.counts()
			return fmt.Sprintf("%d/%d Deployments rolled out, %d/%d pods Running", done, all, running, live), err == nil && all == len(deployments) && done == all, err
		})
	}
	steps := []struct {
		name string
		run  func() error
	}{
		{"create", func() error {
			if err := createLoad(ctx, client, deployments, opts.QPS); err != nil {
				return err
			}
			if err := settled("the load Running"); err != nil {
				return err
			}
			_, _, peak := tracker.startups()
			report.SchedulerThroughput = float64(peak)
			return nil
		}},
		{"scale-up", func() error { return scaleThenSettle(ctx, client, deployments, 1.5, opts, settled) }},
		{"rolling-update", func() error {
			if err := rollLoad(ctx, client, deployments, "2", opts.QPS); err != nil {
				return err
			}
			return settled("the rolling update")
		}},
		{"scale-down", func() error { return scaleThenSettle(ctx, client, deployments, 1, opts, settled) }},
		{"delete", func() error {
			if err := deleteLoad(ctx, client, deployments, opts.QPS); err != nil {
				return err
			}
			return waitFor(ctx, opts, "the load gone", func() (string, bool, error) {
				live, _ := tracker.counts()
				return fmt.Sprintf("%d pods left", live), live == 0, nil
			})
		}},
	}
	for _, step := range steps {
		if err := phase(step.name, step.run); err != nil {
			return report, err
		}
	}
	after, err := scrape(ctx, client)
	if err != nil {
		return report, err
	}
	latencies, _, _ := tracker.startups()
	run := after.Since(before)
	report.Calls = Slowest(run, 25)
	report.SLOs = append(APISLOs(run),
		SLO{Name: "pod-startup", P99: Percentile(latencies, 0.99), Limit: PodStartupLimit, Calls: uint64(len(latencies))})
	report.ServerRSSMaxMiB, report.ServerCPUAvgCores = monitor.finish()
	report.DatastoreMiB = dirMiB(target.DatastoreDir)
	return report, nil
}

func scaleThenSettle(ctx context.Context, client kubernetes.Interface, deployments []deployment, factor float64, opts Options, settled func(string) error) error {
	if err := scaleLoad(ctx, client, deployments, factor, opts.QPS); err != nil {
		return err
	}
	return settled(fmt.Sprintf("%.1fx replicas", factor))
}

// waitFor polls check until it says done, logging its state every 10 s.
func waitFor(ctx context.Context, opts Options, what string, check func() (string, bool, error)) error {
	deadline := time.Now().Add(opts.PhaseTimeout)
	lastLog := time.Now()
	for {
		state, done, err := check()
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not reached within %s: %s (%v)", what, opts.PhaseTimeout, state, err)
		}
		if time.Since(lastLog) >= 10*time.Second {
			opts.Log("waiting for %s: %s", what, state)
			lastLog = time.Now()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func readyNodes(ctx context.Context, client kubernetes.Interface) (int, error) {
	nodes, err := client.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: NodeLabel + "=true", ResourceVersion: "0"})
	if err != nil {
		return 0, err
	}
	ready := 0
	for _, node := range nodes.Items {
		for _, c := range node.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	return ready, nil
}

// scrape reads the API server's latency histograms.
func scrape(ctx context.Context, client kubernetes.Interface) (Histograms, error) {
	raw, err := client.CoreV1().RESTClient().Get().AbsPath("/metrics").DoRaw(ctx)
	if err != nil {
		return nil, fmt.Errorf("read the API server's metrics: %w", err)
	}
	return ParseHistograms(bytes.NewReader(raw))
}
