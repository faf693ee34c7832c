// Package multinode runs clusters of several real nodes (one server with a
// worker, plus `monokube worker` nodes) on one machine, each in namespaces
// of its own on an isolated network, driven by the stock kubectl.
package multinode

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/test/harness"
)

const image = harness.BusyboxImage

// cluster is one server node and its workers on one network.
type cluster struct {
	network *harness.Network
	server  *harness.Node
	workers []*harness.Node
	next    int // index of the next node on the network
}

// startCluster starts a server with a worker and `workers` worker nodes,
// joined with one token, and waits until every node is Ready.
func startCluster(t *testing.T, workers int, specExtra string) *cluster {
	t.Helper()
	c := &cluster{network: harness.NewNetwork(t), next: 1}
	c.server = c.newNode(t, specExtra)
	c.server.StartReady()
	token := c.token(t, "--expiry=1h")
	for range workers {
		worker := c.newNode(t, "")
		worker.StartWorker(token)
		c.workers = append(c.workers, worker)
	}
	c.waitReady(t, c.all()...)
	return c
}

// newNode prepares the next node of the network with the test image.
func (c *cluster) newNode(t *testing.T, specExtra string) *harness.Node {
	t.Helper()
	node := harness.NewNode(t, c.network, c.next, specExtra)
	c.next++
	harness.WriteBusyboxArchive(t, filepath.Join(node.DataDir, "images"))
	return node
}

func (c *cluster) all() []*harness.Node { return append([]*harness.Node{c.server}, c.workers...) }

func (c *cluster) client() kubernetes.Interface { return c.server.Client() }

// token creates a worker join token on the server; only the token is on stdout.
func (c *cluster) token(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := c.server.Run(append([]string{"token", "create", "--role=worker"}, args...)...)
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, stderr)
	}
	return strings.TrimSpace(stdout)
}

// waitReady waits until each node's Node object is Ready.
func (c *cluster) waitReady(t *testing.T, nodes ...*harness.Node) {
	t.Helper()
	client := c.client()
	for _, node := range nodes {
		harness.Poll(t, 3*time.Minute, "node "+node.Name+" Ready", func(ctx context.Context) (bool, error) {
			n, err := client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
			return err == nil && harness.NodeReady(n), nil
		})
	}
}

// nodeExists reports whether a Node object of that name exists.
func (c *cluster) nodeExists(t *testing.T, name string) bool {
	t.Helper()
	nodes, err := c.client().CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(nodes.Items, func(n corev1.Node) bool { return n.Name == name })
}

// webPods runs an httpd pod answering its own name on every node (a
// DaemonSet) and returns the pods by node name.
func (c *cluster) webPods(t *testing.T) map[string]corev1.Pod {
	t.Helper()
	c.server.Apply(fmt.Sprintf(`apiVersion: apps/v1
kind: DaemonSet
metadata: {name: web, namespace: default}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: web
        image: %s
        imagePullPolicy: IfNotPresent
        command: [sh, -c, 'mkdir -p /www && hostname > /www/index.html && exec httpd -f -p 8080 -h /www']
        ports: [{containerPort: 8080}]
`, image))
	want := len(c.all())
	byNode := map[string]corev1.Pod{}
	harness.Poll(t, 3*time.Minute, fmt.Sprintf("web pod Running on each of %d nodes", want), func(ctx context.Context) (bool, error) {
		pods, err := c.client().CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
		if err != nil {
			return false, nil
		}
		clear(byNode)
		for _, pod := range pods.Items {
			if pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "" {
				byNode[pod.Spec.NodeName] = pod
			}
		}
		return len(byNode) == want, nil
	})
	return byNode
}
