package e2e

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestKubeProxyNFTablesModeServesServices runs kube-proxy in nftables mode
// and reaches a ClusterIP Service from the node; the rules must be nftables
// ones, not iptables.
func TestKubeProxyNFTablesModeServesServices(t *testing.T) {
	node := startNode(t, "  network:\n    kubeProxy:\n      mode: nftables\n")
	node.MustKubectl("run", "web", "--image="+image, "--image-pull-policy=IfNotPresent", "--", "sh", "-c",
		"echo hello-nft > /www/index.html && httpd -f -p 8080 -h /www")
	harness.WaitPhase(t, node.Client(), "default", "web", corev1.PodRunning)
	node.MustKubectl("expose", "pod", "web", "--port=80", "--target-port=8080")
	svc, err := node.Client().CoreV1().Services("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	harness.Poll(t, 30*time.Second, "ClusterIP answers through nftables", func(context.Context) (bool, error) {
		return strings.Contains(node.HTTPFrom(svc.Spec.ClusterIP, 80), "hello-nft"), nil
	})
	if out, err := node.InNode("nft", "list", "table", "ip", "kube-proxy"); err != nil || !strings.Contains(out, svc.Spec.ClusterIP) {
		t.Errorf("no kube-proxy nftables table with the service (err %v):\n%s", err, out)
	}
	if out, err := node.InNode("iptables-save"); err != nil {
		t.Errorf("iptables-save (needed to show there are no iptables rules): %v\n%s", err, out)
	} else if strings.Contains(out, "KUBE-SERVICES") {
		t.Errorf("iptables KUBE-SERVICES rules exist in nftables mode:\n%s", out)
	}
}

// TestKubeProxyIPVSModeFailsClearly: this kernel has no IPVS, so a node in
// ipvs mode must stop at once and say why, not hang.
func TestKubeProxyIPVSModeFailsClearly(t *testing.T) {
	if _, err := os.Stat("/proc/net/ip_vs"); err == nil {
		t.Skip("this kernel has IPVS")
	}
	network := harness.NewNetwork(t)
	node := harness.NewNode(t, network, 1, "  network:\n    kubeProxy:\n      mode: ipvs\n")
	node.Start()
	code, err := node.WaitExit(30 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code == 0 || !strings.Contains(node.Log(), "kube-proxy mode ipvs needs the ip_vs kernel module") {
		t.Fatalf("exit code %d; log lacks the IPVS explanation:\n%s", code, node.Log())
	}
}
