package integration

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
	"github.com/monokube/monokube/test/scale"
)

// TestScaleHarnessSmoke runs `make scale`'s machinery small: ten
// simulated nodes and thirty pods through every load phase on a real
// server, and checks that it measured what it reports (nodes, pods, API
// calls per SLO group, pod startups, a scheduler throughput).
func TestScaleHarnessSmoke(t *testing.T) {
	server := harness.NewServer(t, "")
	server.StartReady()
	report := scale.RunAgainst(t, server, filepath.Join(server.DataDir, "db"),
		scale.Options{Nodes: 10, PodsPerNode: 3, QPS: 20, PhaseTimeout: 3 * time.Minute, Log: t.Logf})
	t.Logf("report:\n%s", strings.Join(report.Lines(), "\n"))
	if report.Nodes != 10 || report.Pods != 30 {
		t.Errorf("nodes=%d pods=%d, want 10 and 30", report.Nodes, report.Pods)
	}
	for _, slo := range report.SLOs {
		// Cluster-wide LISTs happen (informers' first lists); the others
		// are the load's own calls.
		if slo.Calls == 0 || slo.P99 <= 0 {
			t.Errorf("SLO %s measured nothing: %+v", slo.Name, slo)
		}
	}
	if report.SchedulerThroughput <= 0 || report.ServerRSSMaxMiB <= 0 || report.DatastoreMiB <= 0 {
		t.Errorf("figures missing: %+v", report)
	}
}
