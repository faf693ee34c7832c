package sysinfo

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/monokube/monokube/internal/node"
)

// minKernel is the oldest kernel the embedded components support well
// (overlayfs with redirect_dir, cgroup v2 where used, nftables).
var minKernel = [2]int{4, 15}

func kernel(h Host, _ Options) []Result {
	release := h.KernelRelease()
	var major, minor int
	if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err != nil {
		return []Result{warn("kernel", "cannot read the kernel version (%q)", release)}
	}
	if major < minKernel[0] || major == minKernel[0] && minor < minKernel[1] {
		return []Result{fail("kernel", "%s is older than %d.%d; upgrade the kernel", release, minKernel[0], minKernel[1])}
	}
	return []Result{pass("kernel", "%s", release)}
}

// cgroupControllers checks the controllers the kubelet requires (cpu,
// cpuacct, cpuset, memory on v1) and the ones it uses when present.
func cgroupControllers(h Host, _ Options) []Result {
	var version string
	enabled := map[string]bool{}
	if raw, err := h.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		version = "v2"
		for _, c := range strings.Fields(raw) {
			enabled[c] = true
		}
		enabled["cpuacct"] = enabled["cpu"] // v2 has no separate cpuacct
	} else {
		version = "v1"
		raw, err := h.ReadFile("/proc/cgroups")
		if err != nil {
			return []Result{fail("cgroups", "no cgroup filesystem (/proc/cgroups unreadable: %v); mount cgroups", err)}
		}
		for _, line := range strings.Split(raw, "\n") {
			fields := strings.Fields(line)
			if len(fields) == 4 && fields[3] == "1" {
				enabled[fields[0]] = true
			}
		}
		if h.Exists("/sys/fs/cgroup/unified/cgroup.controllers") {
			version = "v1 (hybrid)"
		}
	}
	results := []Result{pass("cgroup version", "%s", version)}
	for _, c := range []string{"cpu", "cpuacct", "cpuset", "memory"} {
		if enabled[c] {
			results = append(results, pass("cgroup "+c, "enabled"))
		} else {
			results = append(results, fail("cgroup "+c, "controller missing: the kubelet needs it (enable it on the kernel command line, e.g. cgroup_enable=%s)", c))
		}
	}
	for _, c := range []string{"pids", "hugetlb", "io", "blkio"} {
		if version == "v2" && c == "blkio" || version != "v2" && c == "io" {
			continue
		}
		if enabled[c] {
			results = append(results, pass("cgroup "+c, "enabled"))
		} else {
			results = append(results, warn("cgroup "+c, "controller missing: pod limits on %s are not enforced", c))
		}
	}
	return results
}

func namespaces(h Host, _ Options) []Result {
	var missing []string
	for _, ns := range []string{"net", "mnt", "pid", "ipc", "uts"} {
		if !h.Exists("/proc/self/ns/" + ns) {
			missing = append(missing, ns)
		}
	}
	if len(missing) > 0 {
		return []Result{fail("namespaces", "missing %s namespaces: build the kernel with them", strings.Join(missing, ", "))}
	}
	return []Result{pass("namespaces", "net, mnt, pid, ipc, uts")}
}

// nestedCgroup warns when this process runs below a cgroup it does not
// own the root of (a container, a sandbox, a systemd slice) and no cgroup
// root is set: pods would be created at the hierarchy roots, outside it.
func nestedCgroup(h Host, opts Options) []Result {
	if !opts.Node {
		return nil
	}
	raw, err := h.ReadFile("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	own := ""
	for _, line := range strings.Split(raw, "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) == 3 && (parts[1] == "memory" || parts[0] == "0" && own == "") {
			own = parts[2]
		}
	}
	switch {
	case own == "" || own == "/" || strings.HasPrefix(own, "/system.slice/") || strings.HasPrefix(own, "/user.slice/"):
		return []Result{pass("nested cgroup", "this process is in %q", own)}
	case opts.CgroupRoot != "" && strings.HasPrefix(opts.CgroupRoot, own):
		return []Result{pass("nested cgroup", "cgroup root %s is below this process's cgroup %s", opts.CgroupRoot, own)}
	}
	return []Result{warn("nested cgroup", "this process runs in cgroup %s (a container or sandbox?); to keep pods inside it, use --cgroup-root %s/monokube", own, strings.TrimSuffix(own, "/"))}
}

// minFree and lowFree are the free space a data dir must and should have.
const (
	minFree = 1 << 30
	lowFree = 5 << 30
)

func diskSpace(h Host, opts Options) []Result {
	if opts.DataDir == "" {
		return nil
	}
	free, err := h.FreeBytes(opts.DataDir)
	switch {
	case err != nil:
		return []Result{warn("disk space", "cannot read the free space of %s: %v", opts.DataDir, err)}
	case free < minFree:
		return []Result{fail("disk space", "%s has %s free; at least 1 GiB is needed (images, the datastore)", opts.DataDir, gib(free))}
	case free < lowFree:
		return []Result{warn("disk space", "%s has %s free; 5 GiB or more is advised", opts.DataDir, gib(free))}
	}
	return []Result{pass("disk space", "%s free in %s", gib(free), opts.DataDir)}
}

func gib(bytes uint64) string { return fmt.Sprintf("%.1f GiB", float64(bytes)/(1<<30)) }

func ports(h Host, opts Options) []Result {
	var results []Result
	for _, port := range opts.Ports {
		name := "port " + strconv.Itoa(port)
		if err := h.Listen(port); err != nil {
			results = append(results, fail(name, "in use (%v): stop what listens there, or change the port in the config", err))
		} else {
			results = append(results, pass(name, "free"))
		}
	}
	return results
}

// module reports whether a kernel module is loaded or can be loaded.
func module(h Host, name, loaded string) (state string, ok bool) {
	if h.Exists(loaded) {
		return "loaded", true
	}
	release := h.KernelRelease()
	if raw, err := h.ReadFile(filepath.Join("/lib/modules", release, "modules.dep")); err == nil && strings.Contains(raw, "/"+name+".ko") {
		return "available as a module", true
	}
	if raw, err := h.ReadFile(filepath.Join("/lib/modules", release, "modules.builtin")); err == nil && strings.Contains(raw, "/"+name+".ko") {
		return "built in", true
	}
	return "", false
}

func overlayfs(h Host, _ Options) []Result {
	if raw, err := h.ReadFile("/proc/filesystems"); err == nil && strings.Contains(raw, "\toverlay\n") {
		return []Result{pass("overlayfs", "supported")}
	}
	if state, ok := module(h, "overlay", "/sys/module/overlay"); ok {
		return []Result{pass("overlayfs", "%s", state)}
	}
	return []Result{fail("overlayfs", "not supported: containerd's overlayfs snapshotter needs it (modprobe overlay, or a kernel with CONFIG_OVERLAY_FS)")}
}

func bridgeNetfilter(h Host, _ Options) []Result {
	if h.Exists("/proc/sys/net/bridge/bridge-nf-call-iptables") {
		return []Result{pass("br_netfilter", "loaded")}
	}
	if state, ok := module(h, "br_netfilter", "/sys/module/br_netfilter"); ok {
		return []Result{warn("br_netfilter", "%s but not loaded: Services reached from pods on the same node need it (modprobe br_netfilter)", state)}
	}
	return []Result{warn("br_netfilter", "not available: traffic between pods on one bridge bypasses Service rules (build CONFIG_BRIDGE_NETFILTER)")}
}

func vxlan(h Host, _ Options) []Result {
	if state, ok := module(h, "vxlan", "/sys/module/vxlan"); ok {
		return []Result{pass("vxlan", "%s", state)}
	}
	return []Result{warn("vxlan", "not available: flannel's vxlan backend cannot connect nodes (use spec.network.flannel.backend: host-gw on one L2 segment)")}
}

func ipForward(h Host, _ Options) []Result {
	value, ok := sysctl(h, "net/ipv4/ip_forward")
	switch {
	case !ok:
		return []Result{warn("ip_forward", "cannot read net.ipv4.ip_forward")}
	case value != 1:
		return []Result{warn("ip_forward", "off: pods cannot reach other nodes until it is on (sysctl -w net.ipv4.ip_forward=1, and in /etc/sysctl.d)")}
	}
	return []Result{pass("ip_forward", "on")}
}

func conntrack(h Host, _ Options) []Result {
	if _, ok := sysctl(h, "net/netfilter/nf_conntrack_max"); ok {
		return []Result{pass("nf_conntrack", "loaded")}
	}
	if state, ok := module(h, "nf_conntrack", "/sys/module/nf_conntrack"); ok {
		return []Result{pass("nf_conntrack", "%s", state)}
	}
	return []Result{fail("nf_conntrack", "not available: Services and NAT need it (CONFIG_NF_CONNTRACK)")}
}

func ipvs(h Host, opts Options) []Result {
	if h.Exists("/proc/net/ip_vs") {
		return []Result{pass("ip_vs", "loaded")}
	}
	if state, ok := module(h, "ip_vs", "/sys/module/ip_vs"); ok {
		return []Result{pass("ip_vs", "%s", state)}
	}
	if opts.IPVS {
		return []Result{fail("ip_vs", "kube-proxy mode ipvs needs the ip_vs kernel module, which this kernel lacks: set spec.network.kubeProxy.mode to iptables or nftables")}
	}
	return []Result{warn("ip_vs", "not available: only kube-proxy's ipvs mode needs it (the default is iptables)")}
}

// netTools are the packet-filter programs kube-proxy, the CNI plugins,
// flannel and the NetworkPolicy controller run. monokube carries them
// (package nettools) and puts them first in PATH, so the host's are never
// needed; a build without them cannot run a node.
func netTools(h Host, _ Options) []Result {
	bundled := h.BundledTools()
	var results []Result
	for _, tool := range []string{"iptables", "iptables-restore", "ip6tables", "nft", "ipset", "conntrack"} {
		if slices.Contains(bundled, tool) {
			results = append(results, pass(tool, "bundled with monokube (the host's is not used)"))
		} else {
			results = append(results, fail(tool, "missing from this monokube build, which cannot run a node without it: build with `make build`"))
		}
	}
	return results
}

func inotify(h Host, _ Options) []Result {
	var results []Result
	// Walking /proc once is enough for the check and its message.
	inUse := sync.OnceValue(h.InotifyInstances)
	for _, limit := range []struct {
		name string
		min  int
	}{{maxInotifyInstances, 256}, {"fs/inotify/max_user_watches", 65536}} {
		key := strings.ReplaceAll(limit.name, "/", ".")
		value, ok := sysctl(h, limit.name)
		switch {
		case !ok:
			results = append(results, warn(key, "cannot read it"))
		case limit.name == maxInotifyInstances && value-inUse() < inotifyInstancesNeeded:
			// cAdvisor's watcher cannot start without one, and the kubelet
			// then ends the process (fatal-exits.md K2).
			results = append(results, fail(key, "%d of %d in use by this user; a node needs about %d more (sysctl -w %s=%d)",
				inUse(), value, inotifyInstancesNeeded, key, max(2*value, 512)))
		case value < limit.min:
			results = append(results, warn(key, "%d is low: the kubelet and containerd can run out (sysctl -w %s=%d)", value, key, limit.min*2))
		default:
			results = append(results, pass(key, "%d", value))
		}
	}
	return results
}

const maxInotifyInstances = "fs/inotify/max_user_instances"

// inotifyInstancesNeeded is what one node opens: the kubelet's cAdvisor
// and config watchers, containerd's CNI config watcher, kube-proxy's and
// the certificate reloaders; measured at 6-9, with room.
const inotifyInstancesNeeded = 12

func swap(h Host, _ Options) []Result {
	raw, err := h.ReadFile("/proc/swaps")
	if err != nil {
		return nil
	}
	if lines := strings.Count(strings.TrimSpace(raw), "\n"); lines > 0 {
		return []Result{warn("swap", "%d swap device(s) on: pods' memory limits count only RAM, so a node can swap heavily (swapoff -a)", lines)}
	}
	return []Result{pass("swap", "off")}
}

// resolvConf warns when pods would get no resolver of the host's: a
// loopback-only /etc/resolv.conf (a local cache) without systemd-resolved's
// upstream list would make CoreDNS forward to 8.8.8.8.
func resolvConf(h Host, _ Options) []Result {
	_, source := node.PodResolvConf(func(name string) []byte {
		raw, _ := h.ReadFile(name)
		return []byte(raw)
	})
	if source == "" {
		return []Result{warn("resolv.conf", "no nameserver that pods can reach (only loopback ones, or none): pods and CoreDNS will use 8.8.8.8; list a reachable resolver in /etc/resolv.conf")}
	}
	return []Result{pass("resolv.conf", "pods use the nameservers of %s", source)}
}
