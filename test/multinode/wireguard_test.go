package multinode

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestWireGuardAcrossNAT runs the pod network on WireGuard between a server
// (a node too) and a worker behind a NAT router: the server cannot reach
// the worker's address, the worker keeps the path open. Pods on either
// node reach each other and a ClusterIP Service, and what crosses the
// router is WireGuard's UDP, never VXLAN. A second worker behind another
// NAT cannot reach the first, nor it the second: each says so in its log.
func TestWireGuardAcrossNAT(t *testing.T) {
	c := harness.NewCluster(t, "  network:\n    flannel:\n      backend: wireguard\n")
	c.Server.StartReady()
	worker := c.AddWorkerBehindNAT()
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(c.All()...)
	pods := webPods(t, c)

	checkPodToPod(t, c, pods)

	// A ClusterIP Service backed by the server node's pod, from the pod
	// behind NAT: kube-proxy there sends it across the WireGuard link.
	target := pods[c.Server.Name]
	c.Server.MustKubectl("label", "pod", target.Name, "wg-target=yes")
	c.Server.Apply(`apiVersion: v1
kind: Service
metadata: {name: wg-target, namespace: default}
spec:
  selector: {wg-target: "yes"}
  ports: [{port: 80, targetPort: 8080}]
`)
	svc, err := c.Client().CoreV1().Services("default").Get(context.Background(), "wg-target", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	harness.Poll(t, time.Minute, "ClusterIP from the pod behind NAT", func(context.Context) (bool, error) {
		out, err := podHTTP(c, pods[worker.Name], svc.Spec.ClusterIP, 80)
		return err == nil && strings.Contains(out, target.Name), nil
	})

	wireGuard := harness.RouterPackets(t, worker, harness.WireGuardPort)
	vxlan := harness.RouterPackets(t, worker, harness.VXLANPort)
	t.Logf("UDP packets through the NAT router: %d to WireGuard's port, %d to VXLAN's", wireGuard, vxlan)
	if wireGuard == 0 {
		t.Error("no WireGuard packet crossed the NAT router, yet pods talked across it")
	}
	if vxlan != 0 {
		t.Errorf("%d VXLAN packets crossed the NAT router; the backend is WireGuard", vxlan)
	}
	for _, node := range c.All() {
		line := logLine(t, node, "WireGuard for pod traffic between nodes")
		if line == "" {
			t.Errorf("%s does not say which WireGuard runs", node.Name)
		}
		t.Logf("%s: %s", node.Name, line)
	}

	// Two nodes behind NAT: no path either way, which each one says.
	second := c.AddWorkerBehindNAT()
	second.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(second)
	const silent = "No WireGuard handshake with a node"
	harness.Poll(t, 3*time.Minute, "both workers behind NAT say they cannot reach each other", func(context.Context) (bool, error) {
		return logLine(t, worker, silent) != "" && logLine(t, second, silent) != "", nil
	})
	t.Logf("%s: %s", second.Name, logLine(t, second, silent))
	if line := logLine(t, c.Server, silent); line != "" {
		t.Errorf("the server, which both workers reach, says it cannot reach one: %s", line)
	}
}

// logLine is the last line of node's log holding text, or "".
func logLine(t *testing.T, node *harness.Node, text string) string {
	t.Helper()
	log, err := os.ReadFile(node.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	line := ""
	for l := range strings.Lines(string(log)) {
		if strings.Contains(l, text) {
			line = strings.TrimSpace(l)
		}
	}
	return line
}
