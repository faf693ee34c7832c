package harness

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Cluster is a multi-node cluster on one machine: one server node
// (`server --enable-worker`) and `monokube worker` nodes, each a Node of
// its own on one isolated Network. Everything is removed when the test
// ends, whatever its outcome.
//
//	c := harness.NewCluster(t, "")
//	c.Server.StartReady()
//	token := c.Token("--expiry=1h")
//	c.AddWorker().StartWorker(token)
//	c.WaitReady(c.All()...)
type Cluster struct {
	Network *Network
	Server  *Node
	Workers []*Node

	t    testing.TB
	next int // index of the next node on the network
}

// NewCluster prepares the network and the server node (not started);
// specExtra is YAML added under the server config's spec.
func NewCluster(t testing.TB, specExtra string) *Cluster {
	t.Helper()
	c := &Cluster{Network: NewNetwork(t), t: t, next: 1}
	c.Server = c.NewNode(specExtra)
	return c
}

// NewNode prepares the next node on the network, with the test image in
// its images dir; it is not started and not one of Workers.
func (c *Cluster) NewNode(specExtra string) *Node {
	c.t.Helper()
	node := NewNode(c.t, c.Network, c.next, specExtra)
	c.next++
	WriteBusyboxArchive(c.t, filepath.Join(node.DataDir, "images"))
	return node
}

// AddWorker prepares a worker node (not started) and adds it to Workers.
func (c *Cluster) AddWorker() *Node {
	c.t.Helper()
	worker := c.NewNode("")
	c.Workers = append(c.Workers, worker)
	return worker
}

// All is the server node followed by the workers.
func (c *Cluster) All() []*Node { return append([]*Node{c.Server}, c.Workers...) }

// Client is an admin client of the server.
func (c *Cluster) Client() kubernetes.Interface { return c.Server.Client() }

// Token creates a worker join token on the server (`token create`, whose
// stdout is only the token).
func (c *Cluster) Token(args ...string) string {
	c.t.Helper()
	stdout, stderr, err := c.Server.Run(append([]string{"token", "create", "--role=worker"}, args...)...)
	if err != nil {
		c.t.Fatalf("token create: %v\n%s", err, stderr)
	}
	return strings.TrimSpace(stdout)
}

// WaitReady waits until each node's Node object is Ready.
func (c *Cluster) WaitReady(nodes ...*Node) {
	c.t.Helper()
	client := c.Client()
	for _, node := range nodes {
		Poll(c.t, 3*time.Minute, fmt.Sprintf("node %s Ready", node.Name), func(ctx context.Context) (bool, error) {
			n, err := client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
			return err == nil && NodeReady(n), nil
		})
	}
}

// StartServers starts the cluster's server and count-1 more that join it
// with a controller token, none of them a node, each waited for in turn;
// specExtra is the new servers' spec (the first one's went to NewCluster).
func (c *Cluster) StartServers(count int, specExtra string) []*Node {
	c.t.Helper()
	servers := []*Node{c.Server}
	c.Server.StartServer()
	c.Server.WaitReady(3 * time.Minute)
	token := c.Server.ControllerToken()
	for range count - 1 {
		s := c.NewNode(specExtra)
		s.StartServer("--token", token)
		s.WaitReady(3 * time.Minute)
		servers = append(servers, s)
	}
	return servers
}
