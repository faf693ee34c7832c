package fleettest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/monokube/monokube/test/harness"
)

// nodeService runs monokube on the test hosts, which have no init system:
// the cluster file's own start and stop commands.
const nodeService = `      service:
        start: |
          pid=$(cat /run/monokube.pid 2>/dev/null) && kill -0 "$pid" 2>/dev/null && exit 0
          eval "set -- $MONOKUBE_ARGS"
          setsid /usr/local/bin/monokube "$MONOKUBE_ROLE" "$@" >>/var/lib/monokube/monokube.log 2>&1 </dev/null &
          echo $! > /run/monokube.pid
        stop: |
          pid=$(cat /run/monokube.pid 2>/dev/null) || exit 0
          kill "$pid" 2>/dev/null || exit 0
          while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
          rm -f /run/monokube.pid
`

// TestApplyOverSSH deploys a server+worker and a worker over SSH to two
// machines (each a node's namespaces with Debian's sshd and a private
// /usr/local/bin), as `monokube cluster apply` does for a user: the binary
// copied and checked, the services started, joined, both Ready; a second
// apply changes nothing; `cluster reset` leaves no data dir.
func TestApplyOverSSH(t *testing.T) {
	bin := harness.Binary(t)
	network := harness.NewNetwork(t)
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	clientKey := filepath.Join(home, ".ssh", "id_ed25519")
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", clientKey)
	var knownHosts strings.Builder
	nodes := []*harness.Node{harness.NewNode(t, network, 1, ""), harness.NewNode(t, network, 2, "")}
	for _, n := range nodes {
		n.PrivateDir("/usr/local/bin")
		hostKey := startSSHOnNode(t, n, clientKey+".pub")
		knownHosts.WriteString(knownhosts.Line([]string{knownhosts.Normalize(n.IP + ":22")}, hostKey) + "\n")
	}
	writeFile(t, filepath.Join(home, ".ssh", "known_hosts"), knownHosts.String(), 0o600)

	file := filepath.Join(home, "edge.yaml")
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: monokube.io/v1beta1\nkind: Cluster\nmetadata:\n  name: edge\nspec:\n  hosts:\n")
	for i, n := range nodes {
		role := "worker"
		if i == 0 {
			role = "server+worker"
		}
		fmt.Fprintf(&b, "    - name: %s\n      address: %s\n      role: %s\n      ssh: {keyFile: %s}\n      args: [--cgroup-root, %s]\n%s",
			n.Name, n.IP, role, clientKey, n.CgroupRoot, nodeService)
	}
	writeFile(t, file, b.String(), 0o600)
	monokube := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "LANG=C.UTF-8"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	began := time.Now()
	out, err := monokube("cluster", "apply", "-f", file)
	if err != nil {
		t.Fatalf("cluster apply: %v\n%s", err, out)
	}
	t.Logf("cluster apply over SSH, 2 hosts, in %s:\n%s", time.Since(began).Round(100*time.Millisecond), out)
	kubeconfig := filepath.Join(home, "edge.kubeconfig")
	nodesOut, err := exec.Command(harness.Kubectl, "--kubeconfig", kubeconfig, "get", "nodes", "--no-headers").CombinedOutput()
	if err != nil || strings.Count(string(nodesOut), " Ready ") != 2 {
		t.Fatalf("want 2 Ready nodes: %v\n%s", err, nodesOut)
	}
	for _, n := range nodes {
		if _, err := os.Stat(filepath.Join(n.MachineDir("/usr/local/bin"), "monokube")); err != nil {
			t.Fatalf("the binary is not on %s: %v", n.Name, err)
		}
	}
	if out, err := monokube("cluster", "apply", "-f", file); err != nil || !strings.Contains(out, "Nothing to change") {
		t.Fatalf("a second apply must change nothing: %v\n%s", err, out)
	}
	if out, err := monokube("cluster", "reset", "-f", file); err != nil {
		t.Fatalf("cluster reset: %v\n%s", err, out)
	}
	for _, n := range nodes {
		if entries, _ := os.ReadDir(n.MachineDir("/var/lib/monokube")); len(entries) > 0 {
			t.Errorf("%s keeps data after reset: %d entries", n.Name, len(entries))
		}
	}
}

// startSSHOnNode runs Debian's sshd in the node's network and mount
// namespaces (so what it starts is on that machine), letting in
// authorizedKey as root, and returns its host key.
func startSSHOnNode(t *testing.T, n *harness.Node, authorizedKey string) ssh.PublicKey {
	t.Helper()
	dir := t.TempDir()
	run(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", filepath.Join(dir, "host_ed25519"))
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	users := strings.TrimRight(string(passwd), "\n") + "\n"
	if !strings.Contains("\n"+users, "\nsshd:") {
		users += "sshd:x:64998:65534::/run/sshd:/usr/sbin/nologin\n"
	}
	writeFile(t, filepath.Join(dir, "passwd"), users, 0o644)
	config := filepath.Join(dir, "sshd_config")
	writeFile(t, config, fmt.Sprintf("Port 22\nListenAddress %s\nHostKey %s\nAuthorizedKeysFile %s\nPidFile %s\nUsePAM no\nStrictModes no\n"+
		"PermitRootLogin prohibit-password\nPasswordAuthentication no\nLogLevel VERBOSE\n",
		n.IP, filepath.Join(dir, "host_ed25519"), authorizedKey, filepath.Join(dir, "sshd.pid")), 0o600)
	script := fmt.Sprintf("mkdir -p -m 755 /run/sshd && mount --bind %s /etc/passwd && exec %s -D -e -f %s",
		filepath.Join(dir, "passwd"), sshdBinary(t), config)
	logFile, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// The node's teardown kills sshd and all it started (its mount namespace).
	cmd := exec.Command("nsenter", "--net=/run/netns/"+n.NetNS, "--mount="+n.MountNS, "--uts="+n.UTSNS, "--", "sh", "-c", script)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = cmd.Wait() }()
	t.Cleanup(func() {
		if t.Failed() {
			raw, _ := os.ReadFile(filepath.Join(dir, "sshd.log"))
			t.Logf("--- sshd log of %s ---\n%s", n.Name, raw)
			node, _ := os.ReadFile(filepath.Join(n.MachineDir("/var/lib/monokube"), "monokube.log"))
			t.Logf("--- monokube log of %s ---\n%s", n.Name, lastBytes(node, 6000))
		}
	})
	harness.Poll(t, 20*time.Second, "sshd on "+n.Name, func(ctx context.Context) (bool, error) {
		out, _ := n.InNode("sh", "-c", "cat /proc/net/tcp | grep -c ':0016 '")
		return strings.TrimSpace(out) != "0" && strings.TrimSpace(out) != "", nil
	})
	return readPublicKey(t, filepath.Join(dir, "host_ed25519.pub"))
}

func lastBytes(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
