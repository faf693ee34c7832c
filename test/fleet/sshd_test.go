package fleettest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/monokube/monokube/internal/fleet"
	"github.com/monokube/monokube/test/harness"
)

// sshHost is Debian's OpenSSH sshd on a machine of its own on a test
// Network, as a host the fleet tool deploys to: its own network namespace
// (a veth on the Network's bridge, no route anywhere else), and a private
// mount namespace in which /etc/passwd has the users sshd needs and /run is
// a tmpfs (sshd's privilege separation directory, /run/sshd). The files and
// directories the tests touch are the machine's own: the mount namespace
// shares everything else.
type sshHost struct {
	IP   string
	Port int
	// ClientKey is the private key root (and User) log in with.
	ClientKey string
	// KnownHosts is a known_hosts file with the host's ed25519 key.
	KnownHosts string
	// User is a user other than root, with no sudo rights.
	User string
	// Dir is a directory of the test's the tests may write into.
	Dir string

	netNS   string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
	mountNS uint64 // inode of sshd's mount namespace: every process it starts is in it
}

// sshHostIndex is the host's number on the Network's /24: beside the
// registry (.5), below the nodes (.11 up).
const sshHostIndex = 6

// sshdBinary is Debian's sshd: $MONOKUBE_SSHD_BIN, or build/test-tools/sshd
// at the repository root (make test-tools).
func sshdBinary(t testing.TB) string { return testTool(t, "MONOKUBE_SSHD_BIN", "sshd") }

// testTool is one of the tools `make test-tools` takes out of Debian's
// packages: $env, or build/test-tools/name at the repository root.
func testTool(t testing.TB, env, name string) string {
	t.Helper()
	if path := os.Getenv(env); path != "" {
		return path
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for dir := wd; dir != "/"; dir = filepath.Dir(dir) {
		if candidate := filepath.Join(dir, "build", "test-tools", name); fileExists(candidate) {
			return candidate
		}
	}
	t.Fatalf("%s not found: run `make test-tools` or set %s", name, env)
	return ""
}

// startSSHHost gives sshd a machine on network, starts it and waits until
// it accepts connections. When the test ends, sshd and every process it
// started are killed by process id and its namespace is removed.
func startSSHHost(t *testing.T, network *harness.Network) *sshHost {
	t.Helper()
	bin := sshdBinary(t)
	dir := t.TempDir()
	// sshd reads a user's authorized keys as that user: the user other
	// than root must get through the test's temp dirs (0700).
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	h := &sshHost{
		IP:         fmt.Sprintf("%s.%d", network.Subnet, sshHostIndex),
		Port:       22,
		ClientKey:  filepath.Join(dir, "client_key"),
		KnownHosts: filepath.Join(dir, "known_hosts"),
		User:       "fleetuser",
		Dir:        filepath.Join(dir, "files"),
		netNS:      "mk" + network.ID + "ssh",
		logPath:    filepath.Join(dir, "sshd.log"),
	}
	t.Cleanup(func() {
		h.stop(t)
		if t.Failed() {
			raw, _ := os.ReadFile(h.logPath)
			t.Logf("--- sshd log %s ---\n%s", h.logPath, raw)
		}
		// The veth goes with the namespace.
		if out, err := exec.Command("ip", "netns", "del", h.netNS).CombinedOutput(); err != nil {
			t.Errorf("ssh host teardown: ip netns del %s: %v: %s", h.netNS, err, out)
		}
	})

	// A machine on the segment, as harness.StartRegistry makes one; no
	// default route: it answers the host's leg, on the same /24. The
	// bridge's namespace is named as harness.NewNetwork names it.
	bridge := "mk" + network.ID + "br"
	veth := "mk" + network.ID + "ss"
	run(t, "ip", "netns", "add", h.netNS)
	run(t, "ip", "link", "add", "eth0", "netns", h.netNS, "type", "veth", "peer", "name", veth, "netns", bridge)
	run(t, "ip", "-n", bridge, "link", "set", veth, "master", "br0", "up")
	run(t, "ip", "-n", h.netNS, "link", "set", "lo", "up")
	run(t, "ip", "-n", h.netNS, "addr", "add", h.IP+"/24", "dev", "eth0")
	run(t, "ip", "-n", h.netNS, "link", "set", "eth0", "up")

	// Keys: an ed25519 host key (the one known_hosts has), an ecdsa one
	// (which Go's client prefers when it is not told what the host is known
	// by), and the client's.
	for _, key := range []struct{ kind, file string }{
		{"ed25519", "host_ed25519"}, {"ecdsa", "host_ecdsa"}, {"ed25519", "client_key"},
	} {
		run(t, "ssh-keygen", "-q", "-t", key.kind, "-N", "", "-C", "monokube-test", "-f", filepath.Join(dir, key.file))
	}
	hostKey := readPublicKey(t, filepath.Join(dir, "host_ed25519.pub"))
	writeFile(t, h.KnownHosts, knownhosts.Line([]string{knownhosts.Normalize(h.address())}, hostKey)+"\n", 0o600)
	clientPub, err := os.ReadFile(h.ClientKey + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "authorized_keys"), string(clientPub), 0o644)

	// sshd's privilege separation needs a user "sshd", which this machine
	// may not have; and the test's user other than root.
	passwd, err := os.ReadFile("/etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	home := filepath.Join(dir, "home")
	if err := os.MkdirAll(home, 0o755); err != nil {
		t.Fatal(err)
	}
	users := strings.TrimRight(string(passwd), "\n") + "\n"
	if !strings.Contains("\n"+users, "\nsshd:") {
		users += "sshd:x:64998:65534::/run/sshd:/usr/sbin/nologin\n"
	}
	users += h.User + ":x:64999:65534::" + home + ":/bin/sh\n"
	writeFile(t, filepath.Join(dir, "passwd"), users, 0o644)
	if err := os.MkdirAll(h.Dir, 0o755); err != nil {
		t.Fatal(err)
	}

	config := filepath.Join(dir, "sshd_config")
	writeFile(t, config, fmt.Sprintf(`Port %d
ListenAddress %s
HostKey %s
HostKey %s
AuthorizedKeysFile %s
PidFile %s
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
AllowTcpForwarding yes
LogLevel VERBOSE
`, h.Port, h.IP, filepath.Join(dir, "host_ed25519"), filepath.Join(dir, "host_ecdsa"),
		filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid")), 0o600)

	logFile, err := os.Create(h.logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// nsenter, unshare, sh and the wrapper all exec: the process we start,
	// wait for and kill is sshd. -D: no daemon; -e: log to stderr.
	script := fmt.Sprintf("mount -t tmpfs -o mode=755 tmpfs /run && mkdir -m 755 /run/sshd && "+
		"mount --bind %s /etc/passwd && exec %s -D -e -f %s", filepath.Join(dir, "passwd"), bin, config)
	h.cmd = exec.Command("nsenter", "--net=/run/netns/"+h.netNS, "--",
		"unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script)
	h.cmd.Stdout, h.cmd.Stderr = logFile, logFile
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	h.exited = make(chan struct{})
	go func() {
		_ = h.cmd.Wait()
		close(h.exited)
	}()

	deadline := time.Now().Add(20 * time.Second)
	for {
		if h.mountNS == 0 {
			// Once unshare ran, the process's mount namespace is sshd's.
			if inode, err := harness.NSInode(fmt.Sprintf("/proc/%d/ns/mnt", h.cmd.Process.Pid)); err == nil && inode != hostMountNS(t) {
				h.mountNS = inode
			}
		}
		conn, err := net.DialTimeout("tcp", h.address(), time.Second)
		if err == nil {
			conn.Close()
			if h.mountNS == 0 {
				t.Fatal("sshd answers but its mount namespace is unknown")
			}
			return h
		}
		select {
		case <-h.exited:
			raw, _ := os.ReadFile(h.logPath)
			t.Fatalf("sshd exited: %s\n%s", h.cmd.ProcessState, raw)
		default:
		}
		if time.Now().After(deadline) {
			raw, _ := os.ReadFile(h.logPath)
			t.Fatalf("sshd at %s did not accept connections within 20s: %v\n%s", h.address(), err, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (h *sshHost) address() string { return net.JoinHostPort(h.IP, strconv.Itoa(h.Port)) }

// options are the SSH options of a root login with the client key.
func (h *sshHost) options() fleet.SSHOptions {
	return fleet.SSHOptions{Address: h.IP, KeyFile: h.ClientKey, KnownHostsFile: h.KnownHosts, Timeout: 10 * time.Second}
}

// processes lists the processes in sshd's mount namespace: sshd, its
// per-connection children and the commands they run.
func (h *sshHost) processes() []int {
	var pids []int
	procs, _ := os.ReadDir("/proc")
	for _, proc := range procs {
		pid, err := strconv.Atoi(proc.Name())
		if err != nil {
			continue
		}
		if inode, err := harness.NSInode(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && inode == h.mountNS {
			if state, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil && !strings.Contains(string(state), ") Z ") {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// stop kills sshd, then whatever is left in its mount namespace, by
// process id, and waits until none is left.
func (h *sshHost) stop(t *testing.T) {
	if h.cmd == nil || h.cmd.Process == nil {
		return
	}
	_ = h.cmd.Process.Kill()
	<-h.exited
	if h.mountNS == 0 {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := h.processes()
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("processes of sshd still alive: %v", pids)
			return
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hostMountNS(t *testing.T) uint64 {
	inode, err := harness.NSInode("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	return inode
}

func readPublicKey(t *testing.T, file string) ssh.PublicKey {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	key, _, _, _, err := ssh.ParseAuthorizedKey(raw)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return key
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func writeFile(t *testing.T, file, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(file, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func fileExists(file string) bool {
	_, err := os.Stat(file)
	return err == nil
}
