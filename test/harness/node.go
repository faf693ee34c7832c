package harness

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/monokube/monokube/internal/cgroups"
)

// Network is an isolated L2 segment for test nodes: a bridge living in its
// own network namespace with no uplink, so nothing a node sends can leave
// the machine. The host gets one leg on it so the test's kubectl and
// client-go reach the nodes' API servers.
type Network struct {
	ID     string // short random id, part of every name
	Subnet string // "10.250.N" (a /24)
	// Subnet6 is the IPv6 prefix ("fdXX:XXXX:" + ":host", a /64) once a
	// node asked for IPv6 (AddIPv6); empty before.
	Subnet6 string
	bridge  string // the bridge's network namespace
	hostIf  string

	t testing.TB
}

// NewNetwork creates the segment and removes it when the test ends.
func NewNetwork(t testing.TB) *Network {
	t.Helper()
	raw := make([]byte, 3)
	_, _ = rand.Read(raw)
	id := hex.EncodeToString(raw)
	n := &Network{ID: id, Subnet: fmt.Sprintf("10.250.%d", 1+int(raw[0])%250), bridge: "mk" + id + "br", hostIf: "mk" + id + "h", t: t}
	t.Cleanup(n.remove)
	remember(&made.networks, id)
	n.must("ip", "netns", "add", n.bridge)
	n.must("ip", "-n", n.bridge, "link", "set", "lo", "up")
	n.must("ip", "-n", n.bridge, "link", "add", "br0", "type", "bridge")
	n.must("ip", "-n", n.bridge, "addr", "add", n.Subnet+".1/24", "dev", "br0")
	n.must("ip", "-n", n.bridge, "link", "set", "br0", "up")
	n.must("ip", "link", "add", n.hostIf, "type", "veth", "peer", "name", "hostleg", "netns", n.bridge)
	n.must("ip", "-n", n.bridge, "link", "set", "hostleg", "master", "br0", "up")
	n.must("ip", "addr", "add", n.Subnet+".254/24", "dev", n.hostIf)
	n.must("ip", "link", "set", n.hostIf, "up")
	return n
}

func (n *Network) remove() {
	// Deleting the bridge namespace takes the host leg's peer, and so the
	// host leg, with it.
	if out, err := exec.Command("ip", "netns", "del", n.bridge).CombinedOutput(); err != nil {
		n.t.Errorf("network %s teardown: ip netns del %s: %v: %s", n.ID, n.bridge, err, out)
	}
	// The nodes' namespace files lived here; each node removed its own.
	_ = os.Remove(filepath.Join("/run/mk", n.ID))
	_ = os.Remove("/run/mk") // only succeeds when no other test network is left
}

func (n *Network) must(args ...string) {
	n.t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		n.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// Node is the real monokube binary running as a machine of its own: its
// own network namespace (a veth on the Network), a persistent mount
// namespace with a private /run (it survives restarts of monokube, as a
// machine's /run survives a service restart) and private /var/lib/monokube,
// /var/lib/kubelet, /etc/cni and /etc/monokube, and a cgroup root below the
// test's own cgroup.
type Node struct {
	*Server
	Name    string
	IP      string
	NetNS   string
	MountNS string // bind-mounted namespace file
	// UTSNS gives the node a hostname of its own (its name), as separate
	// machines have: the API server's identity lease is named after it.
	UTSNS      string
	CgroupRoot string
	// Router is the NAT router's namespace in front of a node behind NAT.
	Router string
	// IP6 is the node's IPv6 address, once AddIPv6 gave it one.
	IP6   string
	index int

	network *Network
	nsDir   string
	// root holds, on the host, the node's private machine dirs.
	root string
}

// privateDirs are bind-mounted from the node's temp dir over the machine's
// own, inside the node's mount namespace.
var privateDirs = []string{"/var/lib/monokube", "/var/lib/kubelet", "/etc/cni", "/etc/monokube"}

// NewNode prepares node number index (1-based) on network; Start runs it.
func NewNode(t testing.TB, network *Network, index int, specExtra string) *Node {
	t.Helper()
	name := fmt.Sprintf("node%d", index)
	n := &Node{
		Server:  NewServer(t, specExtra),
		Name:    name,
		IP:      fmt.Sprintf("%s.%d", network.Subnet, 10+index),
		index:   index,
		NetNS:   "mk" + network.ID + "n" + fmt.Sprint(index),
		network: network,
		nsDir:   filepath.Join("/run/mk", network.ID, name),
	}
	n.root = filepath.Join(filepath.Dir(n.DataDir), "root")
	n.MountNS = filepath.Join(n.nsDir, "mnt")
	n.UTSNS = filepath.Join(n.nsDir, "uts")
	own, err := cgroups.Own()
	if err != nil {
		t.Fatal(err)
	}
	n.CgroupRoot = filepath.Join(own, "mk"+network.ID+name)
	RegisterCgroupRoot(n.CgroupRoot)
	t.Cleanup(n.teardown) // runs before the Server's own cleanup (LIFO)

	// Network: a veth into the bridge, a default route to the bridge
	// namespace, which has no uplink.
	network.must("ip", "netns", "add", n.NetNS)
	veth := "mk" + network.ID + "v" + fmt.Sprint(index)
	network.must("ip", "link", "add", "eth0", "netns", n.NetNS, "type", "veth", "peer", "name", veth, "netns", network.bridge)
	network.must("ip", "-n", network.bridge, "link", "set", veth, "master", "br0", "up")
	network.must("ip", "-n", n.NetNS, "link", "set", "lo", "up")
	network.must("ip", "-n", n.NetNS, "addr", "add", n.IP+"/24", "dev", "eth0")
	network.must("ip", "-n", n.NetNS, "link", "set", "eth0", "up")
	network.must("ip", "-n", n.NetNS, "route", "add", "default", "via", network.Subnet+".1")
	network.must("ip", "netns", "exec", n.NetNS, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	// Mount namespace held open by a file on a private mount.
	network.must("mkdir", "-p", n.nsDir)
	network.must("mount", "--bind", n.nsDir, n.nsDir)
	network.must("mount", "--make-private", n.nsDir)
	network.must("touch", n.MountNS)
	network.must("unshare", "--mount="+n.MountNS, "--propagation", "private", "true")
	network.must("touch", n.UTSNS)
	network.must("unshare", "--uts="+n.UTSNS, "hostname", name)
	// The kubelet writes a few host-wide sysctls when they differ from
	// what it wants; inside the node they already agree, so the host's stay.
	sysctls := map[string]string{"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}
	script := "mount -t tmpfs -o mode=755 tmpfs /run"
	for key, value := range sysctls {
		file := filepath.Join(filepath.Dir(n.DataDir), "sysctl_"+strings.ReplaceAll(key, "/", "_"))
		if err := os.WriteFile(file, []byte(value+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		script += fmt.Sprintf(" && mount --bind %s /proc/sys/%s", file, key)
	}
	// A machine's own state dirs, private to the node even where a command
	// falls back to a default path. The host gets at most empty mount points.
	for _, dir := range privateDirs {
		own := n.MachineDir(dir)
		if err := os.MkdirAll(own, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		script += fmt.Sprintf(" && mount --bind %s %s", own, dir)
	}
	network.must("nsenter", "--mount="+n.MountNS, "--", "sh", "-c", script)

	// The node has a network namespace of its own: the standard port is free.
	n.Address, n.Port = n.IP, 6443
	n.WriteConfig("", specExtra)
	return n
}

// MachineDir is where, seen from the host, the node keeps its private copy
// of dir, one of the machine's own state dirs (/var/lib/monokube, ...).
func (n *Node) MachineDir(dir string) string {
	return filepath.Join(n.root, dir)
}

// UserEnv is the environment of a root shell on a machine where nothing
// about monokube was set: what the tests of defaults run with.
var UserEnv = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}

// Start runs `monokube server --enable-worker` inside the node's namespaces.
func (n *Node) Start() {
	n.t.Helper()
	n.startWith("nsenter", "--net=/run/netns/"+n.NetNS, "--mount="+n.MountNS, "--uts="+n.UTSNS, "--",
		n.Bin, "server", "--enable-worker", "--data-dir", n.DataDir, "--config", n.ConfigPath,
		"--cgroup-root", n.CgroupRoot, "--node-name", n.Name)
}

// StartIn runs the monokube binary with args inside the node's namespaces
// as the node's long-running process (for servers with other settings).
func (n *Node) StartIn(args ...string) {
	n.t.Helper()
	n.startWith(append([]string{"nsenter", "--net=/run/netns/" + n.NetNS, "--mount=" + n.MountNS, "--uts=" + n.UTSNS, "--", n.Bin}, args...)...)
}

// StartWorker runs `monokube worker` inside the node's namespaces, as this
// node's name, with args (a token, --token-file, flags) added.
func (n *Node) StartWorker(args ...string) {
	n.t.Helper()
	n.StartIn(append([]string{"worker", "--data-dir", n.DataDir, "--cgroup-root", n.CgroupRoot, "--node-name", n.Name}, args...)...)
}

// StartReady starts the node and waits for the server to report ready.
func (n *Node) StartReady() {
	n.t.Helper()
	n.Start()
	n.WaitReady(3 * time.Minute)
}

// teardown removes everything the node made: its processes (found by their
// mount namespace, never by name), mounts, namespaces and cgroups.
func (n *Node) teardown() {
	n.Kill()
	// Shims live in the node's mount namespace; containers have mount
	// namespaces of their own but live in the node's cgroup tree.
	inode, _ := NSInode(n.MountNS)
	deadline := time.Now().Add(15 * time.Second)
	for {
		pids := nodeProcesses(inode, n.CgroupRoot)
		if len(pids) == 0 {
			break
		}
		if time.Now().After(deadline) {
			n.t.Errorf("processes of node %s still alive after teardown: %v", n.Name, pids)
			break
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, target := range []string{n.MountNS, n.UTSNS, n.nsDir} {
		if err := syscall.Unmount(target, 0); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			n.t.Errorf("node %s teardown: unmount %s: %v", n.Name, target, err)
		}
	}
	if err := os.RemoveAll(n.nsDir); err != nil {
		n.t.Errorf("node %s teardown: %v", n.Name, err)
	}
	if out, err := exec.Command("ip", "netns", "del", n.NetNS).CombinedOutput(); err != nil {
		n.t.Errorf("node %s teardown: ip netns del %s: %v: %s", n.Name, n.NetNS, err, out)
	}
	if err := cgroups.RemoveRoot(cgroups.Detect(), n.CgroupRoot); err != nil {
		n.t.Errorf("cgroups left behind: %v", err)
	}
}

// Processes lists the processes of this node still alive: monokube and
// shims in its mount namespace, containers in its cgroup tree.
func (n *Node) Processes() []int {
	inode, _ := NSInode(n.MountNS)
	return nodeProcesses(inode, n.CgroupRoot)
}

// InNode runs a command inside the node's network and mount namespaces.
func (n *Node) InNode(command ...string) (string, error) {
	args := append([]string{"--net=/run/netns/" + n.NetNS, "--mount=" + n.MountNS, "--uts=" + n.UTSNS, "--"}, command...)
	cmd := exec.Command("nsenter", args...)
	cmd.Env = n.Env
	// The node's own network tools (iptables-save, nft, ...) first, as the
	// node runs them: the machine may have none, or another backend.
	if tools, _ := filepath.Glob(filepath.Join(n.DataDir, "bin", "*", "monokube-netexec")); len(tools) == 1 {
		env := n.Env
		if env == nil {
			env = os.Environ()
		}
		cmd.Env = append(env, "PATH="+filepath.Dir(tools[0])+string(os.PathListSeparator)+os.Getenv("PATH"))
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// HideHostNetTools mounts an empty directory over each directory of the
// machine that holds iptables, ip6tables, nft, ipset or conntrack, inside
// the node only, so the node can use none of the host's.
func (n *Node) HideHostNetTools() {
	n.t.Helper()
	dirs := map[string]bool{}
	for _, tool := range []string{"iptables", "iptables-save", "iptables-restore", "ip6tables", "ip6tables-save",
		"ip6tables-restore", "iptables-legacy", "iptables-nft", "xtables-legacy-multi", "xtables-nft-multi", "nft", "ipset", "conntrack"} {
		for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/bin", "/bin", "/usr/local/sbin", "/usr/local/bin"} {
			if _, err := os.Lstat(filepath.Join(dir, tool)); err == nil {
				if real, err := filepath.EvalSymlinks(dir); err == nil {
					dirs[real] = true
				}
			}
		}
	}
	script := "true"
	for dir := range dirs {
		script += " && mount -t tmpfs -o mode=755,size=1m tmpfs " + dir
	}
	n.network.must("nsenter", "--mount="+n.MountNS, "--", "/bin/sh", "-c", script)
}

// NSInode identifies a namespace (a /proc/PID/ns file or a bind-mounted one).
func NSInode(path string) (uint64, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return 0, err
	}
	return st.Ino, nil
}

// nodeProcesses lists the processes this node started: those in its mount
// namespace (monokube, shims) and those in its cgroup tree (containers).
func nodeProcesses(mountInode uint64, cgroupRoot string) []int {
	var pids []int
	procs, _ := os.ReadDir("/proc")
	for _, proc := range procs {
		pid, err := strconv.Atoi(proc.Name())
		if err != nil {
			continue
		}
		if ino, err := NSInode(fmt.Sprintf("/proc/%d/ns/mnt", pid)); err == nil && mountInode != 0 && ino == mountInode {
			pids = append(pids, pid)
			continue
		}
		if cgroups.ProcessIn(pid, cgroupRoot) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// StartServer runs a control-plane-only `monokube server` inside the
// node's namespaces; args add a token or other flags.
func (n *Node) StartServer(args ...string) {
	n.t.Helper()
	n.StartIn(append([]string{"server", "--data-dir", n.DataDir, "--config", n.ConfigPath, "--node-name", n.Name}, args...)...)
}

// ControllerToken creates a controller join token on this running server.
func (n *Node) ControllerToken() string {
	n.t.Helper()
	stdout, stderr, err := n.Run("token", "create", "--role=controller", "--expiry=1h")
	if err != nil {
		n.t.Fatalf("token create --role=controller: %v\n%s", err, stderr)
	}
	return strings.TrimSpace(stdout)
}

// PrivateDir gives the node its own copy of the machine's dir (empty at
// first), as separate machines have: a test that installs into
// /usr/local/bin must not write into this machine's.
func (n *Node) PrivateDir(dir string) {
	n.t.Helper()
	own := n.MachineDir(dir)
	if err := os.MkdirAll(own, 0o755); err != nil {
		n.t.Fatal(err)
	}
	n.network.must("nsenter", "--mount="+n.MountNS, "--", "mount", "--bind", own, dir)
}
