// Package cleanup removes what a stopped node put on the machine, and
// proves first that every path it removes belongs to that node.
package cleanup

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/bundle"
	"github.com/monokube/monokube/internal/cgroups"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/loadbalancer"
)

// Check refuses a data dir or cgroup root that Reset must not remove: the
// file system root, a directory that is not a monokube data dir, a cgroup
// root that is not one clean absolute path below the hierarchy roots.
// Empty cgroupRoot means the node used the hierarchy roots.
func Check(layout datadir.Layout, cgroupRoot string) error {
	if err := layout.CheckRemovable(); err != nil {
		return err
	}
	if cgroupRoot != "" {
		if err := cgroups.ValidateRoot(cgroupRoot); err != nil {
			return fmt.Errorf("--cgroup-root: %w", err)
		}
	}
	return nil
}

// Reset removes what a stopped node left on the machine: a worker's API
// balancer process, its shims and containers, mounts, the CNI bridge, the iptables and nftables rules of
// kube-proxy and the CNI plugins, its cgroups and, last, its data dir. Each
// step is logged; a failing step does not stop the others. Nothing is
// touched unless Check passes.
func Reset(layout datadir.Layout, cgroupRoot string) error {
	if err := Check(layout, cgroupRoot); err != nil {
		return err
	}
	var errs []error
	step := func(what string, run func() error) {
		klog.InfoS("Reset", "step", what)
		if err := run(); err != nil {
			klog.ErrorS(err, "Reset step failed", "step", what)
			errs = append(errs, fmt.Errorf("%s: %w", what, err))
		}
	}
	mode := cgroups.Detect()
	// The rules are removed with the tools (and the iptables backend) the
	// node used; a node that never unpacked them never wrote rules.
	if binDir, err := bundle.Unpacked(layout.BinRoot()); err == nil {
		step("use the bundled network tools", func() error { return bundle.PutFirstInPath(binDir) })
	}
	step("stop the API balancer process", func() error {
		return loadbalancer.StopProcess(layout.APIBalancerSocket(), layout.APIBalancerPIDFile())
	})
	step("stop shims and containers", func() error { return killNodeProcesses(layout, cgroupRoot) })
	step("unmount", func() error { return unmountBelow(layout.Dir, layout.Run) })
	step("remove network devices cni0, flannel.1, flannel-v6.1, flannel-wg and flannel-wg-v6", removeDevices)
	step("remove iptables rules", removeIPTablesRules)
	step("remove nftables tables", removeNFTables)
	step("remove cgroups", func() error { return removeNodeCgroups(mode, cgroupRoot) })
	step("remove "+layout.Run, func() error { return os.RemoveAll(layout.Run) })
	step("remove "+layout.Dir, func() error { return removeDir(layout.Dir) })
	return errors.Join(errs...)
}

// removeDir removes dir and all in it; a dir that is a mount point (a
// machine that mounts a disk there, a local cluster's node) is emptied and
// kept, as only its owner can take the mount away. (Removing it would also
// detach whatever other mount namespaces mounted on that path.)
func removeDir(dir string) error {
	err := os.RemoveAll(dir)
	if !errors.Is(err, syscall.EBUSY) {
		return err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, entry := range entries {
		errs = append(errs, os.RemoveAll(filepath.Join(dir, entry.Name())))
	}
	return errors.Join(errs...)
}

// killNodeProcesses kills the node's shims (their executable is in the
// node's bin dir) and every process in the node's pod cgroups, until none
// is left.
func killNodeProcesses(layout datadir.Layout, cgroupRoot string) error {
	binDir := layout.BinRoot() + "/"
	podCgroups := filepath.Join("/", cgroupRoot, "kubepods")
	deadline := time.Now().Add(20 * time.Second)
	for {
		var pids []int
		procs, _ := os.ReadDir("/proc")
		for _, proc := range procs {
			pid, err := strconv.Atoi(proc.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			if strings.HasPrefix(exe, binDir) || cgroups.ProcessIn(pid, podCgroups) {
				pids = append(pids, pid)
			}
		}
		if len(pids) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes still running: %v", pids)
		}
		for _, pid := range pids {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// unmountBelow detaches every mount point under the given directories,
// deepest first (pod volumes, overlay rootfs, netns pins, shm).
func unmountBelow(dirs ...string) error {
	file, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return err
	}
	defer file.Close()
	var targets []string
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) < 5 {
			continue
		}
		target := unescapeMount(fields[4])
		for _, dir := range dirs {
			// Below only: the dir itself may be a mount point its owner
			// made (a disk, a local cluster node's bind mount), and what an
			// unmount would uncover there is not the node's to remove.
			if strings.HasPrefix(target, dir+"/") {
				targets = append(targets, target)
			}
		}
	}
	slices.SortFunc(targets, func(a, b string) int { return len(b) - len(a) })
	var errs []error
	for _, target := range targets {
		if err := syscall.Unmount(target, syscall.MNT_DETACH); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("unmount %s: %w", target, err))
		}
	}
	return errors.Join(errs...)
}

// unescapeMount decodes the octal escapes (\040 for space) of mountinfo.
func unescapeMount(path string) string {
	if !strings.Contains(path, `\`) {
		return path
	}
	unquoted, err := strconv.Unquote(`"` + path + `"`)
	if err != nil {
		return path
	}
	return unquoted
}

// removeDevices deletes the CNI bridge and flannel's VXLAN device. It asks
// the kernel rather than /sys/class/net, which shows the network namespace
// that mounted /sys, not ours.
func removeDevices() error {
	var errs []error
	for _, device := range []string{"cni0", "flannel.1", "flannel-v6.1", "flannel-wg", "flannel-wg-v6"} {
		link, err := netlink.LinkByName(device)
		if errors.As(err, &netlink.LinkNotFoundError{}) {
			continue
		}
		if err == nil {
			err = netlink.LinkDel(link)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("delete %s: %w", device, err))
		}
	}
	return errors.Join(errs...)
}

// removeIPTablesRules drops every rule and chain kube-proxy (KUBE-), the
// CNI plugins (CNI-) and flannel (FLANNEL-) added, in IPv4 and IPv6, leaving all other rules.
func removeIPTablesRules() error {
	var errs []error
	for _, family := range []string{"iptables", "ip6tables"} {
		if _, err := exec.LookPath(family + "-save"); err != nil {
			continue
		}
		saved, err := exec.Command(family + "-save").Output()
		if err != nil {
			errs = append(errs, fmt.Errorf("%s-save: %w", family, err))
			continue
		}
		var kept bytes.Buffer
		for _, line := range strings.Split(string(saved), "\n") {
			if strings.Contains(line, "KUBE-") || strings.Contains(line, "CNI-") || strings.Contains(line, "FLANNEL-") {
				continue
			}
			kept.WriteString(line + "\n")
		}
		restore := exec.Command(family + "-restore")
		restore.Stdin = &kept
		if out, err := restore.CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("%s-restore: %v: %s", family, err, out))
		}
	}
	return errors.Join(errs...)
}

// removeNFTables deletes kube-proxy's and flannel's nftables tables.
func removeNFTables() error {
	if _, err := exec.LookPath("nft"); err != nil {
		return nil
	}
	tables := [][2]string{{"ip", "kube-proxy"}, {"ip6", "kube-proxy"}, {"ip", "flannel-ipv4"}, {"ip6", "flannel-ipv6"}}
	for _, table := range tables {
		_ = exec.Command("nft", "delete", "table", table[0], table[1]).Run()
	}
	return nil
}

// removeNodeCgroups removes the node's cgroup root, or with none set the
// kubepods tree the kubelet made at the hierarchy roots.
func removeNodeCgroups(mode cgroups.Mode, cgroupRoot string) error {
	if cgroupRoot == "" {
		return cgroups.RemoveRoot(mode, "/kubepods")
	}
	return cgroups.RemoveRoot(mode, cgroupRoot)
}
