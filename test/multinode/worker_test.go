package multinode

import (
	"context"
	"crypto/tls"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestWorkerNodeIPAndServerAway runs a worker with --node-ip naming the
// second of its two addresses, then stops the server and restarts the
// worker: it must start from the cluster settings it saved (cluster.json)
// with its pod still running, and finish its start and reconnect when the
// server is back. (While the server is away the restarted worker's start
// waits for it: kube-proxy and the CNI config need the Node object.)
func TestWorkerNodeIPAndServerAway(t *testing.T) {
	c := harness.NewCluster(t, "")
	c.Server.StartReady()
	worker := c.AddWorker()
	second := fmt.Sprintf("%s.%d", c.Network.Subnet, 150)
	if out, err := worker.InNode("ip", "addr", "add", second+"/24", "dev", "eth0"); err != nil {
		t.Fatalf("add a second address: %v\n%s", err, out)
	}
	worker.StartWorker(c.Token("--expiry=1h"), "--node-ip", second)
	c.WaitReady(c.All()...)
	client := c.Client()
	ctx := context.Background()

	n, err := client.CoreV1().Nodes().Get(ctx, worker.Name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := internalIPs(n); got != second {
		t.Errorf("worker InternalIP %v, want only --node-ip %s (its first address is %s)", got, second, worker.IP)
	}

	// A worker's kubelet (bootstrapped through the cluster, not configured
	// by a server) refuses anonymous requests too.
	insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the check is about authentication, not the server's identity
	status := 0
	// It serves TLS once the cluster approved its serving certificate.
	harness.Poll(t, time.Minute, "the worker's kubelet answers", func(context.Context) (bool, error) {
		resp, err := insecure.Get("https://" + net.JoinHostPort(second, "10250") + "/pods")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		status = resp.StatusCode
		return true, nil
	})
	if status != http.StatusUnauthorized {
		t.Errorf("anonymous GET /pods on the worker's kubelet: %d, want 401", status)
	}
	// Its credentials are private to root.
	checked := 0
	err = filepath.WalkDir(filepath.Join(worker.DataDir, "agent", "pki"), func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		// The certificate stores' *-current.pem are symlinks: judge the file.
		info, err := os.Stat(path)
		if err != nil {
			return err
		}
		switch mode := info.Mode().Perm(); {
		case entry.IsDir() && mode != 0o700:
			t.Errorf("%s is %o, want 0700", path, mode)
		case strings.HasSuffix(path, ".key") || strings.HasSuffix(path, ".conf") || strings.HasSuffix(path, ".pem"):
			checked++
			if mode != 0o600 {
				t.Errorf("%s is %o, want 0600", path, mode)
			}
		}
		return nil
	})
	if err != nil || checked < 3 {
		t.Errorf("worker agent/pki: %d private files checked (err %v); want the node password, kubeconfigs and kube-proxy's certificate", checked, err)
	}

	c.Server.MustKubectl("run", "keep", "--image="+image, "--image-pull-policy=IfNotPresent",
		"--overrides", fmt.Sprintf(`{"spec":{"nodeName":%q}}`, worker.Name), "--", "sh", "-c", "echo kept > /i && httpd -f -p 8080 -h /")
	pod := harness.WaitPhase(t, client, "default", "keep", corev1.PodRunning)
	// The API server reaches the kubelet at --node-ip: logs work.
	harness.Poll(t, time.Minute, "logs through the kubelet at --node-ip", func(context.Context) (bool, error) {
		_, err := c.Server.Kubectl("logs", "keep")
		return err == nil, nil
	})

	if code, _, err := c.Server.Terminate(time.Minute); err != nil || code != 0 {
		t.Fatalf("server stop: exit %d, %v", code, err)
	}
	worker.Kill()
	worker.StartWorker("--node-ip", second)
	// It waits some 30 s for the server before it falls back to its copy.
	harness.Poll(t, 2*time.Minute, "worker starts from its saved settings", func(context.Context) (bool, error) {
		return strings.Contains(worker.Log(), "using the cluster settings saved at the last start"), nil
	})
	if out := worker.HTTPFrom(pod.Status.PodIP, 8080); !strings.Contains(out, "HTTP/1.") {
		t.Errorf("pod on the worker does not answer while the server is away: %q", out)
	}

	restarted := time.Now()
	c.Server.StartReady()
	// The worker finishes its start once the server answers again.
	harness.Poll(t, 2*time.Minute, "worker ready after the server is back", func(context.Context) (bool, error) {
		return strings.Count(worker.Log(), "monokube worker is ready") == 2, nil
	})
	harness.Poll(t, 2*time.Minute, worker.Name+" reconnects", func(ctx context.Context) (bool, error) {
		lease, err := client.CoordinationV1().Leases("kube-node-lease").Get(ctx, worker.Name, metav1.GetOptions{})
		return err == nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(restarted), nil
	})
	// A restart on another address: kube-proxy, which exits the whole
	// process when its Node's IPs change under it, must start only once the
	// Node shows the new one.
	worker.Kill()
	worker.StartWorker("--node-ip", worker.IP)
	harness.Poll(t, 2*time.Minute, "worker ready on its first address", func(ctx context.Context) (bool, error) {
		n, err := client.CoreV1().Nodes().Get(ctx, worker.Name, metav1.GetOptions{})
		return err == nil && strings.Count(worker.Log(), "monokube worker is ready") == 3 && internalIPs(n) == worker.IP, nil
	})
	// kube-proxy's node watch sees the Node once more after its first sync.
	harness.Poll(t, 30*time.Second, "kube-proxy synced", func(context.Context) (bool, error) {
		return strings.Count(worker.Log(), `"Caches are synced" controller="node config"`) >= 3, nil
	})
	if code, err := worker.WaitExit(3 * time.Second); err == nil {
		t.Fatalf("the worker exited (code %d) after its node IP changed:\n%s", code, worker.Log()[max(0, len(worker.Log())-3000):])
	}

	after, err := client.CoreV1().Pods("default").Get(ctx, "keep", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if id := func(p *corev1.Pod) string { return p.Status.ContainerStatuses[0].ContainerID }; id(after) != id(pod) {
		t.Errorf("the pod's container changed while the server was away: %s → %s", id(pod), id(after))
	}
}

// internalIPs lists a Node's InternalIP addresses, comma-separated.
func internalIPs(n *corev1.Node) string {
	var ips []string
	for _, address := range n.Status.Addresses {
		if address.Type == corev1.NodeInternalIP {
			ips = append(ips, address.Address)
		}
	}
	return strings.Join(ips, ",")
}
