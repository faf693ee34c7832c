package multinode

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/internal/cgroups"
	"github.com/monokube/monokube/test/harness"
)

// TestLocalCluster is `monokube cluster create` as a user runs it: three
// nodes on this machine, each in namespaces of its own, reachable with the
// user's kubeconfig; a cluster file with provider: local then adds a host,
// changes nothing when applied twice, and removes a host (its data gone);
// `cluster delete` leaves nothing behind.
func TestLocalCluster(t *testing.T) {
	bin := harness.Binary(t)
	raw := make([]byte, 3)
	_, _ = rand.Read(raw)
	name := "mkt" + hex.EncodeToString(raw)
	own, err := cgroups.Own()
	if err != nil {
		t.Fatal(err)
	}
	parent := filepath.Join(own, name)
	harness.RegisterCgroupRoot(parent)
	t.Cleanup(func() {
		if err := cgroups.RemoveRoot(cgroups.Detect(), parent); err != nil {
			t.Errorf("cgroups left: %v", err)
		}
	})
	home := t.TempDir()
	kubeconfig := filepath.Join(home, ".kube", "config")
	monokube := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "LANG=C.UTF-8"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join("/var/lib/monokube-clusters", name)); err == nil {
			out, err := monokube("cluster", "delete", name)
			if err != nil {
				t.Errorf("cleanup: cluster delete: %v\n%s", err, out)
			}
		}
	})

	began := time.Now()
	out, err := monokube("cluster", "create", name, "--servers", "1", "--workers", "2", "--cgroup-parent", parent)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("cluster create: %v\n%s", err, out)
	}
	t.Logf("cluster create: 3 nodes Ready in %s\n%s", took.Round(100*time.Millisecond), out)
	kubectl := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(harness.Kubectl, append([]string{"--kubeconfig", kubeconfig, "--context", name}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	nodes := kubectl("get", "nodes", "--no-headers")
	if strings.Count(nodes, " Ready ") != 3 {
		t.Fatalf("want 3 Ready nodes:\n%s", nodes)
	}
	if out, _ := monokube("cluster", "list"); !strings.Contains(out, name) || !strings.Contains(out, "3/3 running") {
		t.Fatalf("cluster list:\n%s", out)
	}

	// The same cluster as a file: a fourth host joins.
	file := filepath.Join(home, "cluster.yaml")
	hosts := func(names ...string) {
		var b strings.Builder
		fmt.Fprintf(&b, "apiVersion: monokube.io/v1beta1\nkind: Cluster\nmetadata:\n  name: %s\nspec:\n  provider: local\n  local:\n    cgroupParent: %s\n  hosts:\n", name, parent)
		for i, n := range names {
			role := "worker"
			if i == 0 {
				role = "server+worker"
			}
			fmt.Fprintf(&b, "    - name: %s\n      role: %s\n", n, role)
		}
		if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	first, second, third, fourth := name+"-1", name+"-2", name+"-3", name+"-4"
	hosts(first, second, third, fourth)
	if out, err := monokube("cluster", "apply", "-f", file); err != nil || !strings.Contains(out, "joined (worker)") {
		t.Fatalf("apply with a host added: %v\n%s", err, out)
	}
	if nodes := kubectl("get", "nodes", "--no-headers"); strings.Count(nodes, " Ready ") != 4 {
		t.Fatalf("want 4 Ready nodes:\n%s", nodes)
	}
	out, err = monokube("cluster", "apply", "-f", file)
	if err != nil || !strings.Contains(out, "Nothing to change") {
		t.Fatalf("a second apply must change nothing: %v\n%s", err, out)
	}

	// A host taken out of the file is drained, deleted and reset.
	removedData := filepath.Join("/var/lib/monokube-clusters", name, "nodes", third)
	hosts(first, second, fourth)
	if out, err := monokube("cluster", "apply", "-f", file); err != nil || !strings.Contains(out, "removed") {
		t.Fatalf("apply with a host removed: %v\n%s", err, out)
	}
	if nodes := kubectl("get", "nodes", "--no-headers"); strings.Contains(nodes, third) || strings.Count(nodes, " Ready ") != 3 {
		t.Fatalf("%s must be gone:\n%s", third, nodes)
	}
	if _, err := os.Stat(removedData); !os.IsNotExist(err) {
		t.Fatalf("the removed host's data is still there: %v", err)
	}

	// A backup fetched here, then a restore: what was written after the
	// backup is gone, and every node is back.
	kubectl("create", "configmap", "before-backup")
	out, err = monokube("cluster", "backup", "-f", file, "--save-path", filepath.Join(home, "backups"))
	if err != nil {
		t.Fatalf("cluster backup: %v\n%s", err, out)
	}
	archive := strings.TrimSpace(out[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	if _, err := os.Stat(archive); err != nil {
		t.Fatalf("the backup is not here (%v):\n%s", err, out)
	}
	kubectl("create", "configmap", "after-backup")
	began = time.Now()
	if out, err := monokube("cluster", "restore", "-f", file, archive); err != nil {
		t.Fatalf("cluster restore: %v\n%s", err, out)
	}
	t.Logf("cluster restore: %s", time.Since(began).Round(100*time.Millisecond))
	configMaps := kubectl("get", "configmaps", "-o", "name")
	if !strings.Contains(configMaps, "before-backup") || strings.Contains(configMaps, "after-backup") {
		t.Fatalf("after the restore, want the backup's objects only:\n%s", configMaps)
	}
	harness.Poll(t, 2*time.Minute, "3 nodes Ready after the restore", func(context.Context) (bool, error) {
		out, err := exec.Command(harness.Kubectl, "--kubeconfig", kubeconfig, "--context", name, "get", "nodes", "--no-headers").CombinedOutput()
		return err == nil && strings.Count(string(out), " Ready ") == 3, nil
	})

	// Delete leaves nothing: no namespace, mount, cgroup, process or link.
	if out, err := monokube("cluster", "delete", name); err != nil {
		t.Fatalf("cluster delete: %v\n%s", err, out)
	}
	harness.Poll(t, 30*time.Second, "nothing of the cluster left", func(context.Context) (bool, error) {
		return len(localLeftovers(t, parent)) == 0, nil
	})
	if left := localLeftovers(t, parent); len(left) > 0 {
		t.Fatalf("left behind: %v", left)
	}
	if raw, _ := os.ReadFile(kubeconfig); strings.Contains(string(raw), name) {
		t.Fatalf("the context is still in the kubeconfig:\n%s", raw)
	}
}

// localLeftovers lists what a deleted local cluster could leave.
func localLeftovers(t *testing.T, parent string) []string {
	var left []string
	for _, cmd := range [][]string{{"ip", "netns", "list"}, {"ip", "-o", "link"}} {
		out, _ := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "mkc") {
				left = append(left, strings.TrimSpace(line))
			}
		}
	}
	raw, _ := os.ReadFile("/proc/self/mountinfo")
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.Contains(line, "/run/monokube-clusters") || strings.Contains(line, "/var/lib/monokube-clusters") {
			left = append(left, "mount: "+line)
		}
	}
	for _, hierarchy := range []string{"memory", "cpu", "pids"} {
		matches, _ := filepath.Glob(filepath.Join("/sys/fs/cgroup", hierarchy, parent, "*"))
		for _, m := range matches {
			if info, err := os.Stat(m); err == nil && info.IsDir() {
				left = append(left, "cgroup: "+m)
			}
		}
	}
	return left
}
