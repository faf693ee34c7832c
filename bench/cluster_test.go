package bench

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

type clusterReport struct {
	StartToThreeReady durations `json:"start_to_three_nodes_ready"`
	ServerReady       durations `json:"server_with_worker_ready"`
	JoinOneMore       durations `json:"join_one_more_worker_to_ready"`
	WorkerIdleRSSMiB  float64   `json:"worker_idle_rss_mib"`
	IdleAfterSeconds  int       `json:"idle_after_seconds"`
}

// TestClusterNumbers starts 1 server (with a worker) and 2 workers on
// namespaced nodes N times (MONOKUBE_BENCH_RUNS, default 3) and measures
// start → three nodes Ready. The workers start as soon as a token can be
// made (the server, itself a node, is ready). Then it joins one more worker to the
// running cluster and measures start → Ready, and the worker's RSS after
// MONOKUBE_BENCH_NODE_IDLE seconds (default 60).
func TestClusterNumbers(t *testing.T) {
	if testing.Short() || envInt("MONOKUBE_BENCH", 0) == 0 {
		t.Skip("set MONOKUBE_BENCH=1 (or run `make bench`)")
	}
	runs := envInt("MONOKUBE_BENCH_RUNS", 3)
	idle := envInt("MONOKUBE_BENCH_NODE_IDLE", 60)
	var threeReady, serverReady, join []time.Duration
	var rss float64
	for i := range runs {
		// A subtest per run, so each cluster is gone before the next starts.
		t.Run(fmt.Sprint("run", i), func(t *testing.T) {
			c := harness.NewCluster(t, "")
			server, three := startThreeNodes(t, c)
			serverReady = append(serverReady, server)
			threeReady = append(threeReady, three)

			extra := c.AddWorker()
			joinBegan := time.Now()
			extra.StartWorker(c.Token("--expiry=10m"))
			c.WaitReady(extra)
			join = append(join, time.Since(joinBegan))
			if i == runs-1 {
				time.Sleep(time.Duration(idle) * time.Second)
				rss = rssMiB(t, extra.PID())
			}
		})
	}
	report := clusterReport{
		StartToThreeReady: summarize(threeReady),
		ServerReady:       summarize(serverReady),
		JoinOneMore:       summarize(join),
		WorkerIdleRSSMiB:  rss,
		IdleAfterSeconds:  idle,
	}
	out, _ := json.MarshalIndent(report, "", "  ")
	fmt.Println(string(out))
}
