package multinode

import (
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

// TestCISWorker joins a worker to a server running the CIS profile: the
// worker's kubelet gets the hardened settings through the cluster (it has
// no profile of its own to set), and `check cis` on the worker's data dir
// checks section 4 alone and finds no FAIL.
func TestCISWorker(t *testing.T) {
	c := harness.NewCluster(t, "  profile: cis\n")
	c.Server.StartReady()
	worker := c.AddWorker()
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(worker)
	start := time.Now()
	out, err := worker.InNode(worker.Bin, "check", "cis", "--data-dir", worker.DataDir)
	if err != nil {
		t.Fatalf("check cis on the worker: %v\n%s", err, out)
	}
	t.Logf("check cis on the worker (%s):\n%s", time.Since(start).Round(time.Millisecond), out)
	for _, id := range []string{"4.1.5-4.1.6", "4.1.9-4.1.10", "4.2.1", "4.2.x", "4.3.1"} {
		if !hasStatusLine(out, id, "PASS") {
			t.Errorf("control %s does not PASS on the worker", id)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "1.") || strings.HasPrefix(line, "5.") {
			t.Errorf("a control plane control is checked on a worker: %s", line)
		}
	}
}
