package conformance

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

	"github.com/monokube/monokube/test/harness"
)

// sliceFocus is what `make test` runs: quick [Conformance] tests across
// pods, services, ConfigMaps, Secrets, the downward API and cluster DNS,
// about two minutes on one node.
var sliceFocus = []string{
	`Pods should be submitted and removed`,
	`Pods should get a host IP`,
	`Pods should support remote command execution over websockets`,
	`ConfigMap should be consumable from pods in volume \[Conformance\]`,
	`ConfigMap should be consumable via environment variable`,
	`Secrets should be consumable from pods in volume \[Conformance\]`,
	`Secrets should be consumable from pods in env vars`,
	`Downward API should provide pod name, namespace and IP address as env vars`,
	`Downward API volume should provide podname only`,
	`Services should serve a basic endpoint from pods`,
	`Services should be able to change the type from ClusterIP to ExternalName`,
	`DNS should provide DNS for services`,
	`DNS should provide /etc/hosts entries for the cluster`,
	`Container Lifecycle Hook when create a pod with lifecycle hook should execute poststart exec hook properly`,
	`EmptyDir volumes should support \(root,0644,tmpfs\)`,
}

// pass is one ginkgo run over the suite.
type pass struct {
	name  string
	focus string
	skip  string
	procs int
}

// inputs are what `make conformance` (or `make test` for the slice) built.
type inputs struct {
	mode    string // slice or full
	bin     string // e2e.test and ginkgo
	images  string // conformance-images.tar
	reports string // JUnit reports and logs, per shape and pass
	summary string // docs/conformance.md (full runs only)
}

func inputsFromEnv(t *testing.T, mode string) inputs {
	in := inputs{mode: os.Getenv("MONOKUBE_CONFORMANCE"), bin: os.Getenv("MONOKUBE_CONFORMANCE_BIN"),
		images: os.Getenv("MONOKUBE_CONFORMANCE_IMAGES"), reports: os.Getenv("MONOKUBE_CONFORMANCE_REPORTS"),
		summary: os.Getenv("MONOKUBE_CONFORMANCE_SUMMARY")}
	if in.mode != mode {
		t.Skipf("MONOKUBE_CONFORMANCE=%s runs this (make conformance, or make test for the slice)", mode)
	}
	for _, need := range []string{filepath.Join(in.bin, "e2e.test"), filepath.Join(in.bin, "ginkgo"), filepath.Join(in.images, "conformance-images.tar")} {
		if _, err := os.Stat(need); err != nil {
			t.Fatalf("%v: build it with make conformance-tools", err)
		}
	}
	if in.reports == "" {
		in.reports = t.TempDir()
	}
	return in
}

// TestConformanceSlice runs the quick slice on one node, as CI does.
// MONOKUBE_CONFORMANCE_FOCUS (a ginkgo focus regexp) runs other tests
// instead, for example the ones a full run reported as failed.
func TestConformanceSlice(t *testing.T) {
	in := inputsFromEnv(t, "slice")
	focus, want := strings.Join(sliceFocus, "|"), len(sliceFocus)
	if custom := os.Getenv("MONOKUBE_CONFORMANCE_FOCUS"); custom != "" {
		focus, want = custom, 1
	}
	cluster := startCluster(t, 1, in.images)
	results, wall := runPass(t, cluster, in, "slice", pass{name: "slice", focus: focus, skip: `\[Serial\]|\[Disruptive\]`, procs: 3})
	counts := count(results)
	t.Logf("conformance slice: %d passed, %d failed, %d skipped in %s", counts.passed, counts.failed, counts.skipped, wall.Round(time.Second))
	if counts.passed < want {
		t.Errorf("only %d of the %d tests asked for passed", counts.passed, want)
	}
	for _, r := range results {
		if r.State == "failed" {
			t.Errorf("FAILED %s: %s", r.Name, r.Reason)
		}
	}
}

// TestConformance runs every [Conformance] test on each cluster shape in
// MONOKUBE_CONFORMANCE_SHAPES (default "1,3": one node, and a server with
// two workers): the parallel tests, then the serial ones.
func TestConformance(t *testing.T) {
	in := inputsFromEnv(t, "full")
	shapes := os.Getenv("MONOKUBE_CONFORMANCE_SHAPES")
	if shapes == "" {
		shapes = "1,3"
	}
	for _, shape := range strings.Split(shapes, ",") {
		var nodes int
		if _, err := fmt.Sscan(shape, &nodes); err != nil || nodes < 1 {
			t.Fatalf("MONOKUBE_CONFORMANCE_SHAPES: %q is not a node count", shape)
		}
		t.Run(fmt.Sprintf("%d-nodes", nodes), func(t *testing.T) {
			run := shapeRun{nodes: nodes, started: time.Now()}
			cluster := startCluster(t, nodes, in.images)
			serverVersion, err := cluster.Client().Discovery().ServerVersion()
			if err != nil {
				t.Fatal(err)
			}
			run.kubeVersion = serverVersion.GitVersion
			for _, p := range []pass{
				{name: "parallel", focus: `\[Conformance\]`, skip: `\[Serial\]|\[Disruptive\]`, procs: parallelProcs()},
				{name: "serial", focus: `\[Serial\].*\[Conformance\]|\[Conformance\].*\[Serial\]`, procs: 1},
			} {
				results, _ := runPass(t, cluster, in, fmt.Sprintf("%d-nodes", nodes), p)
				run.results = append(run.results, results...)
			}
			run.wall = time.Since(run.started)
			if err := run.save(filepath.Join(in.reports, fmt.Sprintf("%d-nodes", nodes))); err != nil {
				t.Error(err)
			}
			counts := count(run.merged())
			t.Logf("%d node(s): %d passed, %d failed, %d skipped in %s", nodes, counts.passed, counts.failed, counts.skipped, run.wall.Round(time.Second))
			if in.summary != "" {
				if err := writeSummary(in.summary, run); err != nil {
					t.Error(err)
				}
			}
			// Failures the shape explains (a one-node cluster cannot pass the
			// tests that need two) are listed in the summary, not held against us.
			for _, r := range run.merged() {
				if r.State == "failed" && knownCause(r, nodes) == "" {
					t.Errorf("FAILED on %d node(s): %s: %s", nodes, r.Name, r.Reason)
				}
			}
		})
	}
}

// parallelProcs is how many ginkgo processes run the parallel tests
// (MONOKUBE_CONFORMANCE_PROCS, default 8): most of the suite's time is spent
// waiting for pods and controllers, so even 2 cores take more than one per core.
func parallelProcs() int {
	procs := 8
	if value := os.Getenv("MONOKUBE_CONFORMANCE_PROCS"); value != "" {
		if _, err := fmt.Sscan(value, &procs); err != nil || procs < 1 {
			procs = 8
		}
	}
	return procs
}

// TestConformanceSummary writes docs/conformance.md again from the reports
// of earlier full runs (MONOKUBE_CONFORMANCE=summary), without a cluster.
func TestConformanceSummary(t *testing.T) {
	if os.Getenv("MONOKUBE_CONFORMANCE") != "summary" {
		t.Skip("MONOKUBE_CONFORMANCE=summary runs this (make conformance-summary)")
	}
	reports, summary := os.Getenv("MONOKUBE_CONFORMANCE_REPORTS"), os.Getenv("MONOKUBE_CONFORMANCE_SUMMARY")
	dirs, _ := filepath.Glob(filepath.Join(reports, "*-nodes"))
	if len(dirs) == 0 {
		t.Fatalf("no runs under %s: run make conformance first", reports)
	}
	for _, dir := range dirs {
		run, err := loadRun(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := writeSummary(summary, run); err != nil {
			t.Fatal(err)
		}
		c := count(run.merged())
		t.Logf("%s: %d passed, %d failed, %d skipped", shapeName(run.nodes), c.passed, c.failed, c.skipped)
	}
}

// startCluster starts a server with a worker and nodes-1 workers, each with
// the suite's images, and waits for the nodes and the system pods.
func startCluster(t *testing.T, nodes int, images string) *harness.Cluster {
	t.Helper()
	cluster := harness.NewCluster(t, "")
	mirror := startRegistry(t, cluster.Network, filepath.Join(images, "conformance-images.tar"))
	addImages(t, cluster.Server, images)
	mirrorRegistries(t, cluster.Server, mirror)
	cluster.Server.Start()
	cluster.Server.WaitReady(3 * time.Minute)
	if nodes > 1 {
		token := cluster.Token("--expiry=24h")
		for i := 1; i < nodes; i++ {
			worker := cluster.AddWorker()
			addImages(t, worker, images)
			mirrorRegistries(t, worker, mirror)
			worker.StartWorker(token)
		}
	}
	cluster.WaitReady(cluster.All()...)
	// The suite expects the system pods (DNS above all) to be running.
	client := cluster.Client()
	harness.Poll(t, 5*time.Minute, "kube-system Deployments available", func(ctx context.Context) (bool, error) {
		deployments, err := client.AppsV1().Deployments("kube-system").List(ctx, metav1.ListOptions{})
		if err != nil || len(deployments.Items) == 0 {
			return false, nil
		}
		for _, d := range deployments.Items {
			if d.Status.AvailableReplicas < 1 {
				return false, nil
			}
		}
		return true, nil
	})
	return cluster
}

// addImages puts the suite's image archive into the node's images dir (a
// hard link: the archive is large and read-only).
func addImages(t *testing.T, node *harness.Node, dir string) {
	t.Helper()
	target := filepath.Join(node.DataDir, "images", "conformance-images.tar")
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		t.Fatal(err)
	}
	source := filepath.Join(dir, "conformance-images.tar")
	if err := os.Link(source, target); err == nil {
		return
	}
	in, err := os.Open(source)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(target)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// runPass runs ginkgo in the server node's network namespace, where the
// API, the nodes and the pod network are all reachable, and returns the
// [Conformance] results of its JUnit report.
func runPass(t *testing.T, cluster *harness.Cluster, in inputs, shape string, p pass) ([]result, time.Duration) {
	t.Helper()
	reportDir, err := filepath.Abs(filepath.Join(in.reports, shape, p.name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(reportDir, 0o755); err != nil {
		t.Fatal(err)
	}
	args := []string{"--net=/run/netns/" + cluster.Server.NetNS, "--",
		filepath.Join(in.bin, "ginkgo"), "--procs", fmt.Sprint(p.procs), "--timeout", "6h", "--no-color",
		"--focus", p.focus}
	if p.skip != "" {
		args = append(args, "--skip", p.skip)
	}
	args = append(args, filepath.Join(in.bin, "e2e.test"), "--",
		"--kubeconfig", cluster.Server.AdminKubeconfig(),
		"--kubectl-path", harness.Kubectl,
		"--provider", "skeleton",
		"--report-dir", reportDir,
		"--disable-log-dump",
		"--dump-logs-on-failure=false",
	)
	logPath := filepath.Join(reportDir, "ginkgo.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command("nsenter", args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	started := time.Now()
	t.Logf("%s: %s pass (%d procs), log in %s", shape, p.name, p.procs, logPath)
	runErr := cmd.Run() // non-zero whenever a test fails; the report says which
	wall := time.Since(started)
	results, err := readJUnit(filepath.Join(reportDir, "junit_01.xml"))
	if err != nil {
		t.Fatalf("%s %s pass (%v after %s): %v; see %s", shape, p.name, runErr, wall.Round(time.Second), err, logPath)
	}
	counts := count(results)
	t.Logf("%s: %s pass: %d passed, %d failed, %d skipped in %s", shape, p.name, counts.passed, counts.failed, counts.skipped, wall.Round(time.Second))
	return results, wall
}

type counts struct{ passed, failed, skipped int }

func count(results []result) counts {
	var c counts
	for _, r := range results {
		switch r.State {
		case "passed":
			c.passed++
		case "failed":
			c.failed++
		default:
			c.skipped++
		}
	}
	return c
}
