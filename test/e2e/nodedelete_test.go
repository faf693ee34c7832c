package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestDeletedNodeRegistersAgainAfterRestart deletes the Node of a running
// `server --enable-worker`. kube-proxy ends the process then (an os.Exit
// upstream, documented in internal/component/fatal-exits.md, P2); started
// again, as its service manager does, the node registers a new Node, gets
// Ready and runs pods, with no operator step.
func TestDeletedNodeRegistersAgainAfterRestart(t *testing.T) {
	node := startNode(t, "")
	client := node.Client()
	node.WaitNodeReady(2 * time.Minute)
	before, err := client.CoreV1().Nodes().Get(context.Background(), node.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	// The API server answering this delete runs in the process that
	// kube-proxy ends once it sees the deletion, so kubectl may lose its
	// answer (CI saw it once). The process exiting below proves the delete
	// was committed; a delete that failed would leave it running.
	if out, err := node.Kubectl("delete", "node", node.Name, "--wait=false"); err != nil {
		t.Logf("kubectl delete node got no answer as the process ended: %v\n%s", err, out)
	}
	code, err := node.WaitExit(time.Minute)
	if err != nil {
		t.Fatalf("the process outlived its Node's deletion: %v", err)
	}
	if code == 0 || !strings.Contains(node.Log(), `"Node is being deleted"`) {
		t.Fatalf("exit code %d; the log lacks kube-proxy's reason:\n%s", code, harness.GrepLines(node.Log(), "deleted"))
	}

	node.StartReady()
	harness.Poll(t, 2*time.Minute, "a new Node, Ready", func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		return err == nil && n.UID != before.UID && harness.NodeReady(n), nil
	})
	node.MustKubectl("run", "after", "--image="+image, "--image-pull-policy=IfNotPresent", "--", "sleep", "3600")
	harness.WaitPhase(t, client, "default", "after", corev1.PodRunning)
}
