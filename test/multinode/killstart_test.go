package multinode

import (
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

// TestWorkerKillNineDuringStartRecovers kills a joining `monokube worker`
// with SIGKILL at a random moment of its start, several times from its
// first start on (bootstrap token exchange, certificate requests, the
// client-side load balancer's state half done). The start after that must
// join and get Ready with no manual step (see harness.KillPlan).
func TestWorkerKillNineDuringStartRecovers(t *testing.T) {
	kills, random := harness.KillPlan(t)
	c := harness.NewCluster(t, "")
	c.Server.StartReady()
	token := c.Token("--expiry=1h")
	worker := c.AddWorker()
	for i := range kills {
		delay := time.Duration(random.Int64N(int64(6 * time.Second)))
		worker.StartWorker(token)
		time.Sleep(delay)
		worker.Kill()
		t.Logf("worker start %d killed after %s", i+1, delay.Round(time.Millisecond))
	}
	worker.StartWorker(token)
	c.WaitReady(worker)
}
