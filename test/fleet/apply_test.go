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

// TestApplyOverSSH deploys a server+worker and two workers over SSH to
// three machines (each a node's namespaces with Debian's sshd, OpenRC as
// its service manager and private /etc, /usr/local/bin and /var/lib),
// as `monokube cluster apply` does for a user: the binary copied and
// checked, the OpenRC services installed and started, joined, all Ready; a
// second apply changes nothing; a host taken out of the file leaves the
// cluster and its data dir is removed, and joins again when put back;
// `cluster reset` leaves no data dir.
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
	var nodes []*harness.Node
	for i := 1; i <= 3; i++ {
		n := harness.NewNode(t, network, i, "")
		useOpenRC(t, n)
		n.PrivateDir("/usr/local/bin")
		hostKey := startSSHOnNode(t, n, clientKey+".pub")
		knownHosts.WriteString(knownhosts.Line([]string{knownhosts.Normalize(n.IP + ":22")}, hostKey) + "\n")
		nodes = append(nodes, n)
	}
	writeFile(t, filepath.Join(home, ".ssh", "known_hosts"), knownHosts.String(), 0o600)

	file := filepath.Join(home, "edge.yaml")
	writeClusterFile := func(hosts []*harness.Node) {
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: monokube.io/v1beta1\nkind: Cluster\nmetadata:\n  name: edge\nspec:\n  hosts:\n")
		for i, n := range hosts {
			role := "worker"
			if i == 0 {
				role = "server+worker"
			}
			fmt.Fprintf(&b, "    - name: %s\n      address: %s\n      role: %s\n      ssh: {keyFile: %s}\n      args: [--cgroup-root, %s]\n",
				n.Name, n.IP, role, clientKey, n.CgroupRoot)
		}
		writeFile(t, file, b.String(), 0o600)
	}
	monokube := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "LANG=C.UTF-8"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	kubeconfig := filepath.Join(home, "edge.kubeconfig")
	readyNodes := func() string {
		out, err := exec.Command(harness.Kubectl, "--kubeconfig", kubeconfig, "get", "nodes", "--no-headers").CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl get nodes: %v\n%s", err, out)
		}
		return string(out)
	}
	apply := func(what string) string {
		t.Helper()
		began := time.Now()
		out, err := monokube("cluster", "apply", "-f", file)
		if err != nil {
			t.Fatalf("cluster apply (%s): %v\n%s", what, err, out)
		}
		t.Logf("cluster apply over SSH (%s) in %s:\n%s", what, time.Since(began).Round(100*time.Millisecond), out)
		return out
	}

	writeClusterFile(nodes)
	apply("3 hosts")
	if got := readyNodes(); strings.Count(got, " Ready ") != 3 {
		t.Fatalf("want 3 Ready nodes:\n%s", got)
	}
	for i, n := range nodes {
		if _, err := os.Stat(filepath.Join(n.MachineDir("/usr/local/bin"), "monokube")); err != nil {
			t.Fatalf("the binary is not on %s: %v", n.Name, err)
		}
		service := "monokube-worker"
		if i == 0 {
			service = "monokube"
		}
		if out, err := n.InNode("rc-service", service, "status"); err != nil || !strings.Contains(out, "started") {
			t.Errorf("%s: OpenRC does not run %s: %v\n%s", n.Name, service, err, out)
		}
	}
	if out := apply("nothing changed"); !strings.Contains(out, "Nothing to change") {
		t.Fatalf("a second apply must change nothing:\n%s", out)
	}

	removed := nodes[2]
	writeClusterFile(nodes[:2])
	apply("host removed")
	if got := readyNodes(); strings.Contains(got, removed.Name) || strings.Count(got, " Ready ") != 2 {
		t.Errorf("%s removed from the file is still a node, or the others are not Ready:\n%s", removed.Name, got)
	}
	if entries, _ := os.ReadDir(removed.MachineDir("/var/lib/monokube")); len(entries) > 0 {
		t.Errorf("%s keeps its data dir after its removal: %d entries", removed.Name, len(entries))
	}
	if out, err := removed.InNode("rc-service", "monokube-worker", "status"); err == nil && strings.Contains(out, "started") {
		t.Errorf("%s: the service still runs after its removal:\n%s", removed.Name, out)
	}

	writeClusterFile(nodes)
	apply("host added")
	if got := readyNodes(); !strings.Contains(got, removed.Name) || strings.Count(got, " Ready ") != 3 {
		t.Errorf("%s added to the file did not join, or not all nodes are Ready:\n%s", removed.Name, got)
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
