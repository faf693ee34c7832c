package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

// TestDefaultDataDirNeedsNoFlags runs `monokube server` with the default
// data dir (/var/lib/monokube, private to the node's mount namespace) and
// uses `monokube kubectl` with no flags and no KUBECONFIG, as the README does.
func TestDefaultDataDirNeedsNoFlags(t *testing.T) {
	network := harness.NewNetwork(t)
	node := harness.NewNode(t, network, 1, "")
	// /var/lib/monokube exists only inside the node: a tmpfs over /var/lib there.
	if out, err := node.InNode("sh", "-c", "mount -t tmpfs tmpfs /var/lib && mkdir /var/lib/monokube"); err != nil {
		t.Fatalf("prepare /var/lib: %v\n%s", err, out)
	}
	node.StartIn("server", "--api-address", node.IP)
	var out string
	harness.Poll(t, 2*time.Minute, "monokube kubectl get ns without flags", func(context.Context) (bool, error) {
		var err error
		out, err = node.InNode("env", "-u", "KUBECONFIG", node.Bin, "kubectl", "get", "ns")
		return err == nil && strings.Contains(out, "kube-system"), nil
	})
	out, err := node.InNode("env", "-u", "KUBECONFIG", node.Bin, "kubectl", "version")
	if err != nil || !strings.Contains(out, "Server Version: v1.37.1") {
		t.Fatalf("monokube kubectl version (err %v):\n%s", err, out)
	}
	if out, err := node.InNode("ls", "/var/lib/monokube/pki/admin.conf", "/var/lib/monokube/db/state.db"); err != nil {
		t.Fatalf("state not in the default data dir (err %v):\n%s", err, out)
	}
	if code, _, err := node.Terminate(30 * time.Second); err != nil || code != 0 {
		t.Fatalf("stop: exit %d, %v", code, err)
	}
}
