package e2e

import (
	"crypto/x509"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestCertificatesRenewWhileRunning gives every leaf a one-minute life,
// renewed when half of it is left. Past the expiry of the first
// certificates the same process must still answer with its serving
// certificate, keep its Node's lease (the kubelet's client certificate),
// schedule and start a pod (the scheduler's, the kubelet's), and stream
// exec and logs (the API server's kubelet-client certificate against the
// kubelet's serving one); no request may fail for an expired certificate.
func TestCertificatesRenewWhileRunning(t *testing.T) {
	node := startNode(t, "  pki:\n    leafValidity: 1m\n    renewPercentLeft: 50\n")
	client := node.Client()
	leaves := func() map[string]*x509.Certificate {
		return harness.Certificates(t, node.DataDir, "pki/*.crt", "agent/pki/*.crt")
	}
	first := leaves()
	if len(first) < 8 {
		t.Fatalf("found %d leaves; expected the server's and the node's", len(first))
	}
	expired := harness.LastExpiry(first)
	if left := time.Until(expired); left > 70*time.Second {
		t.Fatalf("leafValidity not applied: the last leaf expires in %s", left)
	}
	node.MustKubectl("run", "before", "--image="+image, "--image-pull-policy=IfNotPresent", "--restart=Never", "--", "sh", "-c", "echo started; sleep 3600")
	harness.WaitPhase(t, client, "default", "before", corev1.PodRunning)

	harness.WaitReplaced(t, 2*time.Minute, first, leaves)
	// Every first certificate is now expired, and two reload intervals
	// (an eighth of the 30 s margin each) have passed.
	time.Sleep(time.Until(expired.Add(8 * time.Second)))

	if err := syscall.Kill(node.PID(), 0); err != nil || strings.Count(node.Log(), "monokube server is ready") != 1 {
		t.Fatalf("the server did not keep running through the renewal (signal 0: %v)", err)
	}
	client = node.Client() // admin.conf was rewritten with the renewed certificate
	harness.WaitLeaseRenewedAfter(t, client, node.Name, expired)
	node.MustKubectl("run", "after", "--image="+image, "--image-pull-policy=IfNotPresent", "--restart=Never", "--", "sleep", "3600")
	harness.WaitPhase(t, client, "default", "after", corev1.PodRunning)
	if out := node.MustKubectl("exec", "before", "--", "echo", "exec works"); strings.TrimSpace(out) != "exec works" {
		t.Errorf("exec output = %q", out)
	}
	if out := node.MustKubectl("logs", "before"); strings.TrimSpace(out) != "started" {
		t.Errorf("logs = %q", out)
	}

	if log := node.Log(); !strings.Contains(log, `reason="renewal due"`) {
		t.Errorf("the log has no renewal:\n%s", harness.GrepLines(log, "Issued certificate"))
	}
	harness.CheckNoExpiredCertificateUse(t, node)
	stdout, stderr, err := node.Run("certs", "status")
	if err != nil {
		t.Fatalf("certs status: %v\n%s", err, stderr)
	}
	for _, line := range strings.Split(strings.TrimSpace(stdout), "\n")[1:] {
		if !strings.Contains(line, "never (CA)") && !strings.Contains(line, "(in ") {
			t.Errorf("certs status shows no coming renewal for a leaf: %s", line)
		}
	}
}
