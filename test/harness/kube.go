package harness

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// NodeReady reports whether a Node's Ready condition is true.
func NodeReady(node *corev1.Node) bool {
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// WaitNodeReady waits up to timeout for the Node named after n to be Ready
// and returns it.
func (n *Node) WaitNodeReady(timeout time.Duration) *corev1.Node {
	n.t.Helper()
	client := n.Client()
	var node *corev1.Node
	Poll(n.t, timeout, n.Name+" Ready", func(ctx context.Context) (bool, error) {
		var err error
		node, err = client.CoreV1().Nodes().Get(ctx, n.Name, metav1.GetOptions{})
		return err == nil && NodeReady(node), nil
	})
	return node
}

// WaitPhase waits up to two minutes for a pod to reach phase.
func WaitPhase(t testing.TB, client kubernetes.Interface, namespace, name string, phase corev1.PodPhase) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	Poll(t, 2*time.Minute, "pod "+name+" "+string(phase), func(ctx context.Context) (bool, error) {
		var err error
		pod, err = client.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
		return err == nil && pod.Status.Phase == phase, nil
	})
	return pod
}

// HTTPFrom sends an HTTP GET from the node's network namespace (with the
// host's busybox nc) and returns the answer.
func (n *Node) HTTPFrom(host string, port int32) string {
	out, _ := exec.Command("ip", "netns", "exec", n.NetNS, "/bin/busybox", "sh", "-c",
		fmt.Sprintf(`printf "GET / HTTP/1.0\r\n\r\n" | /bin/busybox nc -w 3 %s %d`, host, port)).CombinedOutput()
	return string(out)
}

// Apply applies a manifest with the stock kubectl.
func (s *Server) Apply(manifest string) {
	s.t.Helper()
	if out, err := s.KubectlStdin(manifest, "apply", "-f", "-"); err != nil {
		s.t.Fatalf("apply: %v\n%s", err, out)
	}
}

// PortForward runs `kubectl port-forward target <free local port>:port`
// until the test ends and returns the local base URL once an HTTP request
// through it gets an answer.
func (s *Server) PortForward(target string, port int) string {
	s.t.Helper()
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		s.t.Fatal(err)
	}
	local := listener.Addr().(*net.TCPAddr).Port
	listener.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, Kubectl, "--kubeconfig", s.AdminKubeconfig(), "port-forward", target, fmt.Sprintf("%d:%d", local, port))
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	base := fmt.Sprintf("http://127.0.0.1:%d", local)
	Poll(s.t, 30*time.Second, "an answer through kubectl port-forward to "+target, func(context.Context) (bool, error) {
		resp, err := http.Get(base + "/")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return true, nil
	})
	return base
}
