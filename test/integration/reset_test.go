package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/monokube/monokube/internal/cgroups"
	"github.com/monokube/monokube/test/harness"
)

// TestResetRefusesPathsItDoesNotOwn runs `monokube reset` against a
// scratch data dir and a scratch cgroup root with every kind of bad
// --cgroup-root and --data-dir: each must exit non-zero naming the flag,
// and both must survive. A last, valid reset removes them, so the checks
// are able to see a removal.
func TestResetRefusesPathsItDoesNotOwn(t *testing.T) {
	bin := harness.Binary(t)
	own, err := cgroups.Own()
	if err != nil {
		t.Fatal(err)
	}
	mode := cgroups.Detect()
	root := filepath.Join(own, "mk-reset-guard")
	harness.RegisterCgroupRoot(root)
	if err := cgroups.EnsureRoot(mode, root+"/kubepods"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cgroups.RemoveRoot(mode, root) })
	cgroupDir := filepath.Join(cgroupHierarchy(mode), root)

	dataDir := filepath.Join(t.TempDir(), "data")
	for _, dir := range []string{filepath.Join(dataDir, "pki"), filepath.Join(dataDir, "agent")} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	keep := filepath.Join(dataDir, "pki", "ca.key")
	if err := os.WriteFile(keep, []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	survivors := func(when string) {
		t.Helper()
		if _, err := os.Stat(keep); err != nil {
			t.Fatalf("%s: data dir damaged: %v", when, err)
		}
		if _, err := os.Stat(filepath.Join(cgroupDir, "kubepods")); err != nil {
			t.Fatalf("%s: cgroup root damaged: %v", when, err)
		}
	}
	// In a network namespace of its own: a reset also clears network
	// devices and packet rules, and the host's are not this test's.
	reset := func(args ...string) (string, error) {
		out, err := exec.Command("unshare", append([]string{"--net", bin, "reset"}, args...)...).CombinedOutput()
		return string(out), err
	}

	for _, bad := range []string{"../../..", "/.", "/", "relative", root + "/../..", root + "/..", ""} {
		out, err := reset("--data-dir", dataDir, "--cgroup-root", bad)
		if err == nil {
			t.Errorf("reset --cgroup-root %q succeeded, want a refusal:\n%s", bad, out)
		} else if !strings.Contains(out, "--cgroup-root") {
			t.Errorf("reset --cgroup-root %q: the message must name the flag:\n%s", bad, out)
		}
		survivors("--cgroup-root " + bad)
	}

	plain := t.TempDir()
	if err := os.WriteFile(filepath.Join(plain, "precious"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"/", plain} {
		out, err := reset("--data-dir", bad, "--cgroup-root", root)
		if err == nil || !strings.Contains(out, "--data-dir") {
			t.Errorf("reset --data-dir %s: want a refusal naming the flag, got %v:\n%s", bad, err, out)
		}
		survivors("--data-dir " + bad)
	}
	if _, err := os.Stat(filepath.Join(plain, "precious")); err != nil {
		t.Errorf("a directory that is not a data dir was touched: %v", err)
	}
	if _, err := os.Stat("/monokube.lock"); err == nil {
		t.Error("reset --data-dir / created /monokube.lock")
	}

	if out, err := reset("--data-dir", dataDir, "--cgroup-root", root); err != nil {
		t.Fatalf("valid reset failed: %v\n%s", err, out)
	}
	if _, err := os.Stat(dataDir); err == nil {
		t.Error("valid reset left the data dir")
	}
	if _, err := os.Stat(cgroupDir); err == nil {
		t.Error("valid reset left the cgroup root")
	}
}

func cgroupHierarchy(mode cgroups.Mode) string {
	if mode == cgroups.V2 {
		return "/sys/fs/cgroup"
	}
	return "/sys/fs/cgroup/memory"
}
