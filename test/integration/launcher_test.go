package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

// TestLauncherRunsForAnyUser runs the downloaded program (bin/monokube:
// the launcher with its payload) as a user who is not root, with an empty
// cache: the first `monokube version` unpacks the payload into that user's
// cache and says so, later commands reuse it silently, and
// `monokube kubectl --kubeconfig F get ns` reaches a running server.
func TestLauncherRunsForAnyUser(t *testing.T) {
	server := harness.NewServer(t, "")
	server.StartReady()
	home, err := os.MkdirTemp("", "monokube-user")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	if err := os.Chmod(home, 0o777); err != nil {
		t.Fatal(err)
	}
	program := filepath.Join(home, "monokube")
	kubeconfig := filepath.Join(home, "admin.conf")
	for from, to := range map[string]string{server.Bin: program, server.AdminKubeconfig(): kubeconfig} {
		raw, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(to, raw, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	asUser := func(args ...string) (stdout, stderr string, took time.Duration, err error) {
		cmd := exec.Command("setpriv", append([]string{"--reuid=65534", "--regid=65534", "--clear-groups", program}, args...)...)
		cmd.Env = []string{"HOME=" + home, "PATH=/usr/bin:/bin"}
		var out, errOut strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errOut
		began := time.Now()
		err = cmd.Run()
		return out.String(), errOut.String(), time.Since(began), err
	}

	stdout, stderr, first, err := asUser("version")
	if err != nil || !strings.Contains(stdout, "v1.37") {
		t.Fatalf("first version: %v\nstdout: %s\nstderr: %s", err, stdout, stderr)
	}
	if !strings.Contains(stderr, "unpacking into "+filepath.Join(home, ".cache", "monokube")) {
		t.Errorf("the first run did not say it unpacks into the user's cache:\n%s", stderr)
	}
	stdout, stderr, second, err := asUser("version")
	if err != nil || stderr != "" {
		t.Errorf("second version: %v, stderr %q", err, stderr)
	}
	stdout, stderr, kubectl, err := asUser("kubectl", "--kubeconfig", kubeconfig, "get", "ns")
	if err != nil || !strings.Contains(stdout, "kube-system") {
		t.Errorf("kubectl get ns as another user: %v\n%s%s", err, stdout, stderr)
	}
	t.Logf("as a user: first version (unpack) %s, second version %s, kubectl get ns %s",
		first.Round(time.Millisecond), second.Round(time.Millisecond), kubectl.Round(time.Millisecond))
}
