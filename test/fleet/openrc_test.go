package fleettest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/monokube/monokube/test/harness"
)

// useOpenRC makes Debian's OpenRC the node's service manager, as on a
// machine that runs it: the node's mount namespace gets OpenRC's files over
// /usr (read-only) and an /etc of its own (an overlay whose changes stay in
// the test's temp dir), and `openrc sysinit` initialises /run/openrc, after
// which rc-update and rc-service work without OpenRC being PID 1. A
// `networking` service provides `net`, as a real host's network service
// does. Call it before PrivateDir for dirs below /usr or /etc.
func useOpenRC(t *testing.T, n *harness.Node) {
	t.Helper()
	root := testTool(t, "MONOKUBE_OPENRC_ROOT", "openrc-root")
	etc := t.TempDir()
	for _, dir := range []string{"upper", "work"} {
		if err := os.Mkdir(filepath.Join(etc, dir), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	script := fmt.Sprintf(`set -e
mount -t overlay overlay -o lowerdir=%[1]s/usr:/usr /usr
mount -t overlay overlay -o lowerdir=%[1]s/etc:/etc,upperdir=%[2]s/upper,workdir=%[2]s/work /etc
# The harness made these private before; the overlay covered them.
mount --bind %[3]s /etc/monokube
mount --bind %[4]s /etc/cni
cat > /etc/init.d/networking <<'SERVICE'
#!/sbin/openrc-run
description="the host's network (a test host's is up when it starts)"
depend() { provide net; }
start() { return 0; }
SERVICE
chmod 755 /etc/init.d/networking
: > /etc/insserv.conf
# Services stay in the cgroups they start in: a test creates no cgroup
# outside its own (the nodes' --cgroup-root is below it).
echo 'rc_controller_cgroups="NO"' >> /etc/rc.conf
mkdir -p /run/openrc
openrc sysinit >/dev/null
`, root, etc, n.MachineDir("/etc/monokube"), n.MachineDir("/etc/cni"))
	if out, err := n.InNode("sh", "-c", script); err != nil {
		t.Fatalf("OpenRC on %s: %v\n%s", n.Name, err, out)
	}
	n.PrivateDir("/var/log")
}
