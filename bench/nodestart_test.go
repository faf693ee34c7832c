package bench

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/test/harness"
)

// staticPodNode prepares a `server --enable-worker` node in namespaces of
// its own, with the test image in its images dir and a static pod "first"
// of it: a static pod needs no API call, so its start is part of node start.
// MONOKUBE_BENCH_SPEC is YAML added under the config's spec.
func staticPodNode(t *testing.T) *harness.Node {
	t.Helper()
	node := harness.NewNode(t, harness.NewNetwork(t), 1, os.Getenv("MONOKUBE_BENCH_SPEC"))
	harness.WriteBusyboxArchive(t, filepath.Join(node.DataDir, "images"))
	static := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"first","namespace":"default"},"spec":{"containers":[{"name":"c","image":"` +
		harness.BusyboxImage + `","imagePullPolicy":"IfNotPresent","command":["sleep","3600"]}]}}`
	writeFile(t, filepath.Join(node.DataDir, "static-pods", "first.json"), static)
	return node
}

// nodeStart is one timed start of a staticPodNode.
type nodeStart struct {
	client          kubernetes.Interface // not rate-limited
	began           time.Time
	ready, firstPod time.Duration // start → Node Ready, → the static pod Running
}

func startTimed(t *testing.T, node *harness.Node) nodeStart {
	t.Helper()
	s := nodeStart{began: time.Now()}
	node.Start()
	node.WaitReady(3 * time.Minute)
	s.client = unlimitedClient(t, node)
	harness.Poll(t, 3*time.Minute, "node Ready", func(ctx context.Context) (bool, error) {
		n, err := s.client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		return err == nil && isReady(n), nil
	})
	s.ready = time.Since(s.began)
	harness.Poll(t, 3*time.Minute, "first pod Running", func(ctx context.Context) (bool, error) {
		pod, err := s.client.CoreV1().Pods("default").Get(ctx, "first-"+node.Name, metav1.GetOptions{})
		return err == nil && pod.Status.Phase == corev1.PodRunning, nil
	})
	s.firstPod = time.Since(s.began)
	return s
}

// startThreeNodes starts the cluster's server (itself a node) and, as soon
// as it can make a token, two workers, and returns start → server ready
// and start → all three Ready.
func startThreeNodes(t *testing.T, c *harness.Cluster) (serverReady, threeReady time.Duration) {
	t.Helper()
	began := time.Now()
	c.Server.Start()
	c.Server.WaitReady(3 * time.Minute)
	serverReady = time.Since(began)
	token := c.Token("--expiry=10m")
	for range 2 {
		c.AddWorker().StartWorker(token)
	}
	c.WaitReady(c.All()...)
	return serverReady, time.Since(began)
}
