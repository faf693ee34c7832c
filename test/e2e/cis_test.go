package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestCISProfileOnANode runs `server --enable-worker --profile cis`. Its
// kubelet protects the kernel's defaults, so a kernel with another value
// is refused before anything starts, naming the parameter and the fix
// (monokube never changes them). With them as the kubelet wants (the test
// node's /proc/sys files are its own), the node gets Ready, a pod that
// meets Pod Security "restricted" runs, and `check cis` has no FAIL for
// the node's controls either.
func TestCISProfileOnANode(t *testing.T) {
	network := harness.NewNetwork(t)
	node := harness.NewNode(t, network, 1, "")
	harness.WriteBusyboxArchive(t, node.DataDir+"/images")
	start := func() {
		node.StartIn("server", "--enable-worker", "--profile", "cis", "--data-dir", node.DataDir, "--config", node.ConfigPath,
			"--cgroup-root", node.CgroupRoot, "--node-name", node.Name)
	}
	panicFile := filepath.Join(filepath.Dir(node.DataDir), "sysctl_kernel_panic")
	if err := os.WriteFile(panicFile, []byte("0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start()
	code, err := node.WaitExit(time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if log := node.Log(); code == 0 || !strings.Contains(log, "kernel.panic is 0, needs 10") || !strings.Contains(log, "kernel.panic=10 in /etc/sysctl.d/90-kubelet.conf") {
		t.Fatalf("exit %d; want a refusal naming kernel.panic and the fix:\n%s", code, harness.GrepLines(log, "kernel"))
	}
	if _, err := os.Stat(node.DataDir + "/agent"); err == nil {
		t.Error("the refused start set up a node")
	}

	if err := os.WriteFile(panicFile, []byte("10\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start()
	node.WaitReady(3 * time.Minute)
	node.WaitNodeReady(3 * time.Minute)
	node.Apply(`apiVersion: v1
kind: Pod
metadata: {name: hardened, namespace: default}
spec:
  securityContext: {runAsNonRoot: true, runAsUser: 1000, seccompProfile: {type: RuntimeDefault}}
  containers:
  - name: c
    image: ` + image + `
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    securityContext: {allowPrivilegeEscalation: false, capabilities: {drop: [ALL]}}
`)
	harness.WaitPhase(t, node.Client(), "default", "hardened", corev1.PodRunning)

	stdout, stderr, err := node.Run("check", "cis")
	if err != nil {
		t.Fatalf("check cis: %v\n%s%s", err, stdout, stderr)
	}
	for _, id := range []string{"4.2.1", "4.2.4", "4.2.12", "4.2.x", "4.3.1"} {
		if !strings.Contains(stdout, id+" ") {
			t.Errorf("check cis lacks node control %s:\n%s", id, stdout)
		}
	}
	t.Logf("check cis on a node:\n%s", harness.GrepLines(stdout, "4."))
}
