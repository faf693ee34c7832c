package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
	"github.com/monokube/monokube/test/scale"
)

// TestScale is `make scale`: one real server (SQLite, or DATASTORE=etcd
// for embedded etcd), NODES simulated nodes and PODS_PER_NODE pods each
// through clusterloader2's load phases; it prints one `slo` line per SLO
// and the run's figures, writes them all as JSON (MONOKUBE_SCALE_REPORT),
// and fails when an SLO is violated.
func TestScale(t *testing.T) {
	if testing.Short() || envInt("MONOKUBE_SCALE", 0) == 0 {
		t.Skip("set MONOKUBE_SCALE=1 (or run `make scale`)")
	}
	opts := scale.Options{
		Nodes: envInt("NODES", 100), PodsPerNode: envInt("PODS_PER_NODE", 10), QPS: float64(envInt("SCALE_QPS", 20)),
		PhaseTimeout: 30 * time.Minute, IdleWindow: 30 * time.Second,
		Log: func(format string, args ...any) { t.Logf(format, args...) },
	}
	datastore := os.Getenv("DATASTORE")
	if datastore == "" {
		datastore = "sqlite"
	}
	report := runScale(t, datastore, opts)
	for _, line := range report.Lines() {
		fmt.Println(line)
	}
	path := os.Getenv("MONOKUBE_SCALE_REPORT")
	if path == "" {
		path = filepath.Join(t.TempDir(), "scale.json")
	}
	out, _ := json.MarshalIndent(struct {
		Datastore string `json:"datastore"`
		scale.Report
	}{datastore, report}, "", "  ")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	fmt.Printf("report=%s\n", path)
	if report.Violated() {
		t.Errorf("an SLO was violated at %d nodes and %d pods on %s", report.Nodes, report.Pods, datastore)
	}
}

// runScale starts the server and runs the load against it.
func runScale(t *testing.T, datastore string, opts scale.Options) scale.Report {
	spec, dir := "  network:\n    podCIDR: "+scale.ClusterPodCIDR+"\n", "db"
	switch datastore {
	case "sqlite":
	case "etcd":
		spec, dir = spec+"  storage:\n    type: etcd\n", "etcd"
	default:
		t.Fatalf("DATASTORE=%s: this run knows sqlite and etcd", datastore)
	}
	// SCALE_SPEC adds YAML under the server's spec, for A/B runs (upstream's
	// scheduler client limit: "  scheduler: {extraArgs: {kube-api-qps: '50'}}").
	server := harness.NewServer(t, spec+os.Getenv("SCALE_SPEC"))
	server.StartReady()
	return scale.RunAgainst(t, server, filepath.Join(server.DataDir, dir), opts)
}
