package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestDefaultConfigPathWithoutProxyOrPodNetwork starts a node without
// --config: the config comes from /etc/monokube/monokube.yaml (the node's
// own, private /etc/monokube) and turns kube-proxy and the pod network
// provider off. Pods still run on the node's bridge; no kube-proxy rules and
// no flannel device appear, and the bridge masquerades by itself.
func TestDefaultConfigPathWithoutProxyOrPodNetwork(t *testing.T) {
	network := harness.NewNetwork(t)
	node := harness.NewNode(t, network, 1, "  network:\n    kubeProxy:\n      mode: disabled\n    provider: none\n")
	harness.WriteBusyboxArchive(t, filepath.Join(node.DataDir, "images"))
	config, err := os.ReadFile(node.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	// The host side of the node's private /etc/monokube.
	etc := filepath.Join(filepath.Dir(node.DataDir), "root", "etc", "monokube", "monokube.yaml")
	if err := os.WriteFile(etc, config, 0o600); err != nil {
		t.Fatal(err)
	}
	node.StartIn("server", "--enable-worker", "--data-dir", node.DataDir, "--cgroup-root", node.CgroupRoot, "--node-name", node.Name)
	node.WaitReady(3 * time.Minute)
	if !strings.Contains(node.Log(), `"Loaded config" path="/etc/monokube/monokube.yaml"`) {
		t.Fatal("the default config path was not read")
	}
	client := node.Client()
	node.WaitNodeReady(2 * time.Minute)
	node.MustKubectl("run", "web", "--image="+image, "--image-pull-policy=IfNotPresent", "--", "httpd", "-f", "-p", "8080")
	pod := harness.WaitPhase(t, client, "default", "web", corev1.PodRunning)
	node.MustKubectl("expose", "pod", "web", "--port=80", "--target-port=8080")

	if rules, err := node.InNode("iptables-save"); err != nil {
		t.Errorf("iptables-save: %v\n%s", err, rules)
	} else if strings.Contains(rules, "KUBE-SERVICES") || strings.Contains(rules, "FLANNEL-") {
		t.Errorf("kube-proxy or flannel rules with both turned off:\n%s", rules)
	}
	if out, err := node.InNode("ip", "link", "show", "flannel.1"); err == nil || !strings.Contains(out, "does not exist") {
		t.Errorf("flannel.1 with provider none (err %v):\n%s", err, out)
	}
	if out, err := node.InNode("ip", "link", "show", "cni0"); err != nil {
		t.Errorf("no cni0 bridge although a pod runs (err %v):\n%s", err, out)
	}
	raw, err := os.ReadFile(filepath.Join(node.DataDir, "agent", "etc", "cni", "net.d", "10-monokube.conflist"))
	if err != nil {
		t.Fatal(err)
	}
	var conflist struct {
		Plugins []struct {
			Type   string `json:"type"`
			IPMasq bool   `json:"ipMasq"`
		} `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &conflist); err != nil || len(conflist.Plugins) == 0 || !conflist.Plugins[0].IPMasq {
		t.Errorf("without a provider the bridge must masquerade (err %v):\n%s", err, raw)
	}
	if pod.Status.PodIP == "" || !strings.HasPrefix(pod.Status.PodIP, "10.42.") {
		t.Errorf("pod IP %q is not from the pod CIDR", pod.Status.PodIP)
	}
	if out := node.HTTPFrom(pod.Status.PodIP, 8080); !strings.Contains(out, "HTTP/1.") {
		t.Errorf("the node cannot reach its own pod at %s:8080", pod.Status.PodIP)
	}
}
