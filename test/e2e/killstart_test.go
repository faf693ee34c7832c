package e2e

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestKillNineDuringStartRecovers kills a `server --enable-worker` with
// SIGKILL at a random moment of its start, MONOKUBE_KILL_STARTS times
// (default 5; `make bench` runs more), beginning with the very first start
// on an empty data dir (certificates, kubeconfigs, the database and
// containerd's state half written). The start after that must reach Node
// Ready and run a pod with no manual step. The moments are random; the
// seed is logged, and MONOKUBE_KILL_SEED replays a run.
func TestKillNineDuringStartRecovers(t *testing.T) {
	kills, random := harness.KillPlan(t)
	network := harness.NewNetwork(t)
	node := harness.NewNode(t, network, 1, "")
	harness.WriteBusyboxArchive(t, node.DataDir+"/images")
	for i := range kills {
		// A typical start reaches Node Ready in 5–8 s here.
		delay := time.Duration(random.Int64N(int64(8 * time.Second)))
		node.Start()
		time.Sleep(delay)
		node.Kill()
		t.Logf("start %d killed after %s", i+1, delay.Round(time.Millisecond))
	}
	node.StartReady()
	client := node.Client()
	node.WaitNodeReady(3 * time.Minute)
	node.MustKubectl("run", "survivor", "--image="+image, "--image-pull-policy=IfNotPresent", "--", "sleep", "3600")
	harness.WaitPhase(t, client, "default", "survivor", corev1.PodRunning)
}
