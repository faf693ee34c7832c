// Package multinode runs clusters of several real nodes (one server with a
// worker, plus `monokube worker` nodes) on one machine, each in namespaces
// of its own on an isolated network, driven by the stock kubectl.
package multinode

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

const image = harness.BusyboxImage

// startCluster starts a server with a worker and `workers` worker nodes,
// joined with one token, and waits until every node is Ready.
func startCluster(t *testing.T, workers int, specExtra string) *harness.Cluster {
	t.Helper()
	c := harness.NewCluster(t, specExtra)
	c.Server.StartReady()
	token := c.Token("--expiry=1h")
	for range workers {
		c.AddWorker().StartWorker(token)
	}
	c.WaitReady(c.All()...)
	// A worker's kubelet asks for its serving certificate after it
	// registers; logs and exec reach it only once that is issued.
	for _, worker := range c.Workers {
		harness.Poll(t, time.Minute, worker.Name+" serving certificate", func(context.Context) (bool, error) {
			stdout, _, err := worker.Run("certs", "status")
			return err == nil && strings.Contains(stdout, "node/kubelet-server"), nil
		})
	}
	return c
}

// nodeExists reports whether a Node object of that name exists.
func nodeExists(t *testing.T, c *harness.Cluster, name string) bool {
	t.Helper()
	nodes, err := c.Client().CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return slices.ContainsFunc(nodes.Items, func(n corev1.Node) bool { return n.Name == name })
}

// webPods runs an httpd pod answering its own name on every node (a
// DaemonSet) and returns the pods by node name.
func webPods(t *testing.T, c *harness.Cluster) map[string]corev1.Pod {
	t.Helper()
	c.Server.Apply(fmt.Sprintf(`apiVersion: apps/v1
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
	want := len(c.All())
	byNode := map[string]corev1.Pod{}
	harness.Poll(t, 3*time.Minute, fmt.Sprintf("web pod Running on each of %d nodes", want), func(ctx context.Context) (bool, error) {
		pods, err := c.Client().CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=web"})
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
