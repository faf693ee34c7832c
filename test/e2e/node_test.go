// Package e2e runs a single node (`server --enable-worker`) in namespaces of
// its own and runs real containers on it, driven by the stock kubectl.
package e2e

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/test/harness"
)

const image = harness.BusyboxImage

// startNode brings up one node with the busybox image in its images dir.
func startNode(t *testing.T) *harness.Node {
	t.Helper()
	network := harness.NewNetwork(t)
	node := harness.NewNode(t, network, 1, "")
	harness.WriteBusyboxArchive(t, filepath.Join(node.DataDir, "images"))
	node.StartReady()
	client := node.Client()
	poll(t, 2*time.Minute, "node Ready", func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, node.Name, metav1.GetOptions{})
		return err == nil && nodeReady(n), nil
	})
	return node
}

func TestNodeRunsPods(t *testing.T) {
	node := startNode(t)
	client := node.Client()

	t.Run("EchoPodLogs", func(t *testing.T) {
		node.MustKubectl("run", "hello", "--image="+image, "--image-pull-policy=IfNotPresent", "--restart=Never", "--", "echo", "hi from monokube")
		waitPhase(t, client, "default", "hello", corev1.PodSucceeded)
		if out := node.MustKubectl("logs", "hello"); strings.TrimSpace(out) != "hi from monokube" {
			t.Fatalf("logs = %q", out)
		}
	})

	t.Run("ExecIntoRunningPod", func(t *testing.T) {
		node.MustKubectl("run", "sleeper", "--image="+image, "--image-pull-policy=IfNotPresent", "--restart=Never", "--", "sleep", "3600")
		waitPhase(t, client, "default", "sleeper", corev1.PodRunning)
		if out := node.MustKubectl("exec", "sleeper", "--", "echo", "exec works"); strings.TrimSpace(out) != "exec works" {
			t.Fatalf("exec output = %q", out)
		}
	})
}

func nodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func waitPhase(t *testing.T, client kubernetes.Interface, namespace, name string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	poll(t, 2*time.Minute, "pod "+name+" "+string(phase), func(ctx context.Context) (bool, error) {
		var err error
		pod, err = client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		return err == nil && pod.Status.Phase == phase, nil
	})
	return pod
}

func poll(t *testing.T, timeout time.Duration, what string, condition wait.ConditionWithContextFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := wait.PollUntilContextCancel(ctx, 250*time.Millisecond, true, condition); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
