package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/monokube/monokube/internal/cgroups"
	"github.com/monokube/monokube/test/harness"
)

// TestResetLeavesNothingBehind runs a pod, stops the node and runs
// `monokube reset` without --cgroup-root (the node recorded its own): no
// processes, mounts, bridge, rules, cgroups or data may remain.
func TestResetLeavesNothingBehind(t *testing.T) {
	node := startNode(t, "")
	node.MustKubectl("run", "web", "--image="+image, "--image-pull-policy=IfNotPresent", "--port=8080", "--", "httpd", "-f", "-p", "8080")
	harness.WaitPhase(t, node.Client(), "default", "web", corev1.PodRunning)
	node.MustKubectl("expose", "pod", "web", "--port=80", "--target-port=8080")
	// monokube status: a running node says Ready, with every component
	// ready; a stopped one fails.
	out, err := node.InNode(node.Bin, "status", "--data-dir", node.DataDir)
	if err != nil || !strings.Contains(out, node.Name+" Ready") || !strings.Contains(out, "running") {
		t.Fatalf("status of a running node: %v\n%s", err, out)
	}
	for _, component := range []string{"apiserver", "containerd", "kubelet", "kube-proxy"} {
		if !strings.Contains(out, component+" ready, since") {
			t.Errorf("status lacks %s ready:\n%s", component, out)
		}
	}
	if code, _, err := node.Terminate(30 * time.Second); err != nil || code != 0 {
		t.Fatalf("stop: code %d, %v", code, err)
	}
	if out, err := node.InNode(node.Bin, "status", "--data-dir", node.DataDir, "-o", "json"); err == nil || !strings.Contains(out, `"running": false`) {
		t.Fatalf("status of a stopped node: err %v, want a non-zero exit\n%s", err, out)
	}
	if len(node.Processes()) == 0 {
		t.Fatal("no pod processes after stop: the check below would prove nothing")
	}
	// The node's own network tools read the rules afterwards: reset removes
	// them with the data dir, and the host needs none installed.
	tools := keepNetTools(t, node)
	if out, err := node.InNode(node.Bin, "reset", "--data-dir", node.DataDir); err != nil {
		t.Fatalf("reset: %v\n%s", err, out)
	}
	if pids := node.Processes(); len(pids) > 0 {
		t.Errorf("processes left: %v", pids)
	}
	if mounts, err := node.InNode("cat", "/proc/self/mountinfo"); err != nil || !strings.Contains(mounts, " / ") {
		t.Errorf("cannot read the node's mount table (err %v):\n%s", err, mounts)
	} else if strings.Contains(mounts, node.DataDir) {
		t.Errorf("mounts left under the data dir:\n%s", mounts)
	}
	for _, save := range []string{"iptables-legacy-save", "iptables-nft-save"} {
		if rules, err := node.InNode(filepath.Join(tools, save)); err != nil {
			t.Errorf("%s: %v\n%s", save, err, rules)
		} else if strings.Contains(rules, "KUBE-") || strings.Contains(rules, "CNI-") || strings.Contains(rules, "FLANNEL-") {
			t.Errorf("iptables rules left (%s):\n%s", save, rules)
		}
	}
	for _, device := range []string{"cni0", "flannel.1"} {
		// Gone means ip says so; any other failure (no ip binary, no
		// namespace) proves nothing.
		out, err := node.InNode("ip", "link", "show", device)
		switch {
		case err == nil:
			t.Errorf("%s left:\n%s", device, out)
		case !strings.Contains(out, fmt.Sprintf("Device %q does not exist", device)):
			t.Errorf("ip link show %s failed for another reason than a missing device: %v\n%s", device, err, out)
		}
	}
	hierarchy := "/sys/fs/cgroup/memory"
	if cgroups.Detect() == cgroups.V2 {
		hierarchy = "/sys/fs/cgroup"
	}
	if _, err := os.Stat(filepath.Join(hierarchy, node.CgroupRoot)); !os.IsNotExist(err) {
		t.Errorf("cgroup root %s left (stat: %v)", node.CgroupRoot, err)
	}
	if _, err := os.Stat(node.DataDir); !os.IsNotExist(err) {
		t.Errorf("data dir %s left (stat: %v)", node.DataDir, err)
	}
}

// keepNetTools copies the node's network tools (internal/nettools: the
// launcher, its links and the bundled tree) out of its data dir and
// returns the copy's directory.
func keepNetTools(t *testing.T, node *harness.Node) string {
	t.Helper()
	found, _ := filepath.Glob(filepath.Join(node.DataDir, "bin", "*", "monokube-netexec"))
	if len(found) != 1 {
		t.Fatalf("the node's network tools: found %v", found)
	}
	kept := filepath.Join(t.TempDir(), "tools")
	if out, err := exec.Command("cp", "-a", filepath.Dir(found[0]), kept).CombinedOutput(); err != nil {
		t.Fatalf("keep the node's network tools: %v\n%s", err, out)
	}
	return kept
}
