package multinode

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestWorkerRidesOutServerAbsence stops the only server for
// MONOKUBE_SERVER_AWAY (default 30s; `make bench` runs 5m) while a worker
// keeps running: its pod must answer the whole time, and once the server
// is back the worker renews its lease again with the same container (no
// restart of the worker, no operator step).
func TestWorkerRidesOutServerAbsence(t *testing.T) {
	away := 30 * time.Second
	if d, err := time.ParseDuration(os.Getenv("MONOKUBE_SERVER_AWAY")); err == nil {
		away = d
	}
	c := startCluster(t, 1, "")
	worker := c.Workers[0]
	client := c.Client()
	c.Server.MustKubectl("run", "keep", "--image="+image, "--image-pull-policy=IfNotPresent",
		"--overrides", fmt.Sprintf(`{"spec":{"nodeName":%q}}`, worker.Name), "--", "sh", "-c", "echo kept > /i && httpd -f -p 8080 -h /")
	pod := harness.WaitPhase(t, client, "default", "keep", corev1.PodRunning)

	if code, _, err := c.Server.Terminate(time.Minute); err != nil || code != 0 {
		t.Fatalf("server stop: exit %d, %v", code, err)
	}
	for began := time.Now(); time.Since(began) < away; time.Sleep(10 * time.Second) {
		if out := worker.HTTPFrom(pod.Status.PodIP, 8080); !strings.Contains(out, "HTTP/1.") {
			t.Errorf("pod on the worker silent %s into the server's absence: %q", time.Since(began).Round(time.Second), out)
		}
		if _, err := worker.WaitExit(100 * time.Millisecond); err == nil {
			t.Fatalf("the worker exited while the server was away:\n%s", worker.Log()[max(0, len(worker.Log())-3000):])
		}
	}
	t.Logf("server away for %s", away)

	back := time.Now()
	c.Server.StartReady()
	harness.Poll(t, 3*time.Minute, worker.Name+" renews its lease", func(ctx context.Context) (bool, error) {
		lease, err := client.CoordinationV1().Leases("kube-node-lease").Get(ctx, worker.Name, metav1.GetOptions{})
		return err == nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(back), nil
	})
	t.Logf("worker reconnected %s after the server was back", time.Since(back).Round(time.Second))
	c.WaitReady(worker)
	after, err := client.CoreV1().Pods("default").Get(context.Background(), "keep", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if id := func(p *corev1.Pod) string { return p.Status.ContainerStatuses[0].ContainerID }; id(after) != id(pod) {
		t.Errorf("the pod's container changed while the server was away: %s → %s", id(pod), id(after))
	}
}
