package fleet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The local provider keeps each cluster's state under LocalRoot/<name> and
// its namespace files under localRun/<id> (a tmpfs: they go with a reboot,
// and `cluster start` makes them again).
const (
	LocalRoot = "/var/lib/monokube-clusters"
	localRun  = "/run/monokube-clusters"
)

// localPrivateDirs are a node's own, bind-mounted from its state dir over
// the machine's inside its mount namespace: what separate machines would
// not share.
var localPrivateDirs = []string{"/etc/monokube", "/var/lib/monokube", "/var/lib/kubelet", "/etc/cni", "/usr/local/bin"}

// localSysctls are host-wide settings the kubelet writes when they differ
// from what it wants; inside a local node they already agree, so the
// machine's stay as they are.
var localSysctls = map[string]string{"vm/overcommit_memory": "1", "kernel/panic": "10", "kernel/panic_on_oops": "1"}

// localTools are what building the namespaces takes (iproute2, util-linux).
var localTools = []string{"ip", "nsenter", "unshare", "mount", "umount", "setsid"}

// LocalCluster is a cluster whose nodes are namespaces on this machine,
// on a private bridge with no route out.
type LocalCluster struct {
	Name   string      `json:"name"`
	ID     string      `json:"id"`     // six hex digits: interface names are short
	Subnet string      `json:"subnet"` // "10.213.7": the nodes' /24
	Nodes  []LocalNode `json:"nodes"`
}

// LocalNode is one node's place on the bridge.
type LocalNode struct {
	Name  string `json:"name"`
	Index int    `json:"index"`
	IP    string `json:"ip"`
}

// Dir is the cluster's state dir.
func (c *LocalCluster) Dir() string { return filepath.Join(LocalRoot, c.Name) }

func (c *LocalCluster) bridgeNS() string { return "mkc" + c.ID + "br" }
func (c *LocalCluster) hostLeg() string  { return "mkc" + c.ID + "h" }
func (c *LocalCluster) runDir() string   { return filepath.Join(localRun, c.ID) }

func (n LocalNode) netNS(c *LocalCluster) string   { return fmt.Sprintf("mkc%sn%d", c.ID, n.Index) }
func (n LocalNode) root(c *LocalCluster) string    { return filepath.Join(c.Dir(), "nodes", n.Name) }
func (n LocalNode) nsDir(c *LocalCluster) string   { return filepath.Join(c.runDir(), n.Name) }
func (n LocalNode) mountNS(c *LocalCluster) string { return filepath.Join(n.nsDir(c), "mnt") }
func (n LocalNode) utsNS(c *LocalCluster) string   { return filepath.Join(n.nsDir(c), "uts") }

// NewLocalCluster plans a cluster of the given hosts on a free subnet.
func NewLocalCluster(name string, hosts []Host, subnet string) (*LocalCluster, error) {
	raw := make([]byte, 3)
	if _, err := rand.Read(raw); err != nil {
		return nil, err
	}
	c := &LocalCluster{Name: name, ID: hex.EncodeToString(raw)}
	if subnet != "" {
		c.Subnet = strings.TrimSuffix(subnet, ".0/24")
	} else {
		free, err := freeSubnet()
		if err != nil {
			return nil, err
		}
		c.Subnet = free
	}
	for i, h := range hosts {
		c.Nodes = append(c.Nodes, LocalNode{Name: h.Name, Index: i + 1, IP: fmt.Sprintf("%s.%d", c.Subnet, 11+i)})
	}
	return c, nil
}

// freeSubnet is a /24 of 10.213.0.0/16 no local cluster uses.
func freeSubnet() (string, error) {
	used := map[string]bool{}
	clusters, _ := ListLocal()
	for _, c := range clusters {
		used[c.Subnet] = true
	}
	for i := 1; i < 255; i++ {
		if s := fmt.Sprintf("10.213.%d", i); !used[s] {
			return s, nil
		}
	}
	return "", errors.New("no free subnet left in 10.213.0.0/16")
}

// LoadLocal reads a local cluster's state.
func LoadLocal(name string) (*LocalCluster, error) {
	raw, err := os.ReadFile(filepath.Join(LocalRoot, name, "state.json"))
	if os.IsNotExist(err) {
		return nil, fmt.Errorf("no local cluster named %q (`monokube cluster list` shows them)", name)
	}
	if err != nil {
		return nil, err
	}
	var c LocalCluster
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, fmt.Errorf("local cluster %s: %w", name, err)
	}
	return &c, nil
}

// ListLocal is every local cluster of this machine.
func ListLocal() ([]*LocalCluster, error) {
	entries, err := os.ReadDir(LocalRoot)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var clusters []*LocalCluster
	for _, e := range entries {
		if c, err := LoadLocal(e.Name()); err == nil {
			clusters = append(clusters, c)
		}
	}
	return clusters, nil
}

func (c *LocalCluster) save() error {
	raw, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(c.Dir(), 0o700); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(c.Dir(), "state.json"), raw, 0o600)
}

// node finds a node by name.
func (c *LocalCluster) node(name string) (LocalNode, bool) {
	for _, n := range c.Nodes {
		if n.Name == name {
			return n, true
		}
	}
	return LocalNode{}, false
}

// Ensure makes whatever of the bridge and the nodes' namespaces is missing
// (all of it at a create, the tmpfs parts after a reboot).
func (c *LocalCluster) Ensure() error {
	for _, tool := range localTools {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("a local cluster needs %s (iproute2, util-linux) on this machine: %w", tool, err)
		}
	}
	if err := c.save(); err != nil {
		return err
	}
	if !exists(filepath.Join("/run/netns", c.bridgeNS())) {
		err := run(
			[]string{"ip", "netns", "add", c.bridgeNS()},
			[]string{"ip", "-n", c.bridgeNS(), "link", "set", "lo", "up"},
			[]string{"ip", "-n", c.bridgeNS(), "link", "add", "br0", "type", "bridge"},
			[]string{"ip", "-n", c.bridgeNS(), "addr", "add", c.Subnet + ".1/24", "dev", "br0"},
			[]string{"ip", "-n", c.bridgeNS(), "link", "set", "br0", "up"},
			// This machine's leg on the bridge: kubectl reaches the API servers.
			[]string{"ip", "link", "add", c.hostLeg(), "type", "veth", "peer", "name", "hostleg", "netns", c.bridgeNS()},
			[]string{"ip", "-n", c.bridgeNS(), "link", "set", "hostleg", "master", "br0", "up"},
			[]string{"ip", "addr", "add", c.Subnet + ".254/24", "dev", c.hostLeg()},
			[]string{"ip", "link", "set", c.hostLeg(), "up"},
		)
		if err != nil {
			return fmt.Errorf("local cluster %s: bridge: %w", c.Name, err)
		}
	}
	for _, n := range c.Nodes {
		if err := c.ensureNode(n); err != nil {
			return fmt.Errorf("local cluster %s: node %s: %w", c.Name, n.Name, err)
		}
	}
	return nil
}

func (c *LocalCluster) ensureNode(n LocalNode) error {
	ns := n.netNS(c)
	if !exists(filepath.Join("/run/netns", ns)) {
		veth := fmt.Sprintf("mkc%sv%d", c.ID, n.Index)
		// No route out of the machine: the default route ends at the bridge.
		err := run(
			[]string{"ip", "netns", "add", ns},
			[]string{"ip", "link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", veth, "netns", c.bridgeNS()},
			[]string{"ip", "-n", c.bridgeNS(), "link", "set", veth, "master", "br0", "up"},
			[]string{"ip", "-n", ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", ns, "addr", "add", n.IP + "/24", "dev", "eth0"},
			[]string{"ip", "-n", ns, "link", "set", "eth0", "up"},
			[]string{"ip", "-n", ns, "route", "add", "default", "via", c.Subnet + ".1"},
			[]string{"ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv4.ip_forward=1"},
		)
		if err != nil {
			return err
		}
	}
	if exists(n.mountNS(c)) && mounted(n.mountNS(c)) {
		return nil
	}
	root := n.root(c)
	if err := os.MkdirAll(n.nsDir(c), 0o700); err != nil {
		return err
	}
	script := "mount -t tmpfs -o mode=755 tmpfs /run"
	for key, value := range localSysctls {
		file := filepath.Join(root, "sysctl", strings.ReplaceAll(key, "/", "_"))
		if err := os.MkdirAll(filepath.Dir(file), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(file, []byte(value+"\n"), 0o644); err != nil {
			return err
		}
		script += fmt.Sprintf(" && mount --bind %s /proc/sys/%s", file, key)
	}
	for _, dir := range localPrivateDirs {
		own := filepath.Join(root, "root", dir)
		if err := os.MkdirAll(own, 0o755); err != nil {
			return err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		script += fmt.Sprintf(" && mount --bind %s %s", own, dir)
	}
	// The namespace files live on a private mount of their own, so the
	// mount namespace they hold does not hold itself.
	return run(
		[]string{"mount", "--bind", n.nsDir(c), n.nsDir(c)},
		[]string{"mount", "--make-private", n.nsDir(c)},
		[]string{"touch", n.mountNS(c), n.utsNS(c)},
		[]string{"unshare", "--mount=" + n.mountNS(c), "--propagation", "private", "true"},
		[]string{"unshare", "--uts=" + n.utsNS(c), "hostname", n.Name},
		[]string{"nsenter", "--mount=" + n.mountNS(c), "--", "sh", "-c", script},
	)
}

// NodeIP is a node's address on the bridge.
func (c *LocalCluster) NodeIP(name string) string {
	n, _ := c.node(name)
	return n.IP
}

// Machine is a node of the cluster as the fleet tool reaches it.
func (c *LocalCluster) Machine(name string) (Machine, error) {
	n, ok := c.node(name)
	if !ok {
		return nil, fmt.Errorf("local cluster %s has no node %q", c.Name, name)
	}
	return &localMachine{cluster: c, node: n}, nil
}

// Delete removes the namespaces, the bridge and the state; the nodes must
// be stopped and reset first.
func (c *LocalCluster) Delete() error {
	if err := c.deleteNodes(); err != nil {
		return err
	}
	// The bridge namespace takes the host leg's peer, and the host leg, with it.
	if exists(filepath.Join("/run/netns", c.bridgeNS())) {
		if err := run([]string{"ip", "netns", "del", c.bridgeNS()}); err != nil {
			return err
		}
	}
	_ = os.RemoveAll(c.runDir())
	_ = os.Remove(localRun)
	return os.RemoveAll(c.Dir())
}

// deleteNodes removes the nodes' namespaces.
func (c *LocalCluster) deleteNodes() error {
	var errs []error
	for _, n := range c.Nodes {
		for _, file := range []string{n.mountNS(c), n.utsNS(c), n.nsDir(c)} {
			if mounted(file) {
				if out, err := exec.Command("umount", file).CombinedOutput(); err != nil {
					errs = append(errs, fmt.Errorf("umount %s: %v: %s", file, err, out))
				}
			}
		}
		if exists(filepath.Join("/run/netns", n.netNS(c))) {
			if err := run([]string{"ip", "netns", "del", n.netNS(c)}); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// localMachine runs commands in a node's namespaces, as root.
type localMachine struct {
	cluster *LocalCluster
	node    LocalNode
}

func (m *localMachine) command(ctx context.Context, script string) *exec.Cmd {
	c, n := m.cluster, m.node
	cmd := exec.CommandContext(ctx, "nsenter", "--net=/run/netns/"+n.netNS(c), "--mount="+n.mountNS(c), "--uts="+n.utsNS(c),
		"--", "sh", "-c", script)
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}
	return cmd
}

func (m *localMachine) Run(ctx context.Context, script string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := m.command(ctx, script)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), runError(err, stderr.String())
	}
	return stdout.String(), nil
}

func (m *localMachine) Upload(ctx context.Context, content io.Reader, path string, mode os.FileMode) error {
	var stderr bytes.Buffer
	cmd := m.command(ctx, uploadScript(path, mode))
	cmd.Stdin, cmd.Stderr = content, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("upload %s: %w", path, runError(err, stderr.String()))
	}
	return nil
}

func (m *localMachine) Download(ctx context.Context, path string, w io.Writer) error {
	var stderr bytes.Buffer
	cmd := m.command(ctx, "cat "+shellQuote(path))
	cmd.Stdout, cmd.Stderr = w, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("download %s: %w", path, runError(err, stderr.String()))
	}
	return nil
}

func (m *localMachine) String() string { return m.node.Name + " (" + m.node.IP + ")" }
func (m *localMachine) Close() error   { return nil }

// uploadScript writes stdin to path atomically.
func uploadScript(path string, mode os.FileMode) string {
	dir, tmp := filepath.Dir(path), path+".upload"
	return fmt.Sprintf("mkdir -p %s && cat > %s && chmod %o %s && mv -f %s %s",
		shellQuote(dir), shellQuote(tmp), mode.Perm(), shellQuote(tmp), shellQuote(tmp), shellQuote(path))
}

// runError is a failed command's error with the end of its stderr.
func runError(err error, stderr string) error {
	if tail := strings.TrimSpace(lastLines(stderr, stderrTailLines)); tail != "" {
		return fmt.Errorf("%w: %s", err, tail)
	}
	return err
}

func run(commands ...[]string) error {
	for _, args := range commands {
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// mounted reports a mount point at path.
func mounted(path string) bool {
	raw, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if fields := strings.Fields(line); len(fields) > 4 && fields[4] == path {
			return true
		}
	}
	return false
}

// State says how many of the cluster's nodes run.
func (c *LocalCluster) State(ctx context.Context) string {
	running := 0
	for _, n := range c.Nodes {
		if !exists(n.mountNS(c)) || !mounted(n.mountNS(c)) {
			continue
		}
		m := &localMachine{cluster: c, node: n}
		if _, err := m.Run(ctx, `kill -0 "$(cat /run/monokube.pid 2>/dev/null)" 2>/dev/null`); err == nil {
			running++
		}
	}
	return fmt.Sprintf("%d/%d running", running, len(c.Nodes))
}
