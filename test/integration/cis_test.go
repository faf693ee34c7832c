package integration

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestCISProfile starts a server with --profile cis: Pod Security enforces
// restricted (a plain pod that could escalate is refused in default),
// `monokube check cis` exits 0 with only PASS and MANUAL lines, and the
// same check on a default server exits 1 listing the controls the profile
// fixes.
func TestCISProfile(t *testing.T) {
	// One server at a time: both would listen on 127.0.0.1:10257.
	hardened := harness.NewServer(t, "")
	hardened.StartArgs("--profile", "cis")
	hardened.WaitReady(3 * time.Minute)
	// Allowed by baseline, refused by restricted: no securityContext.
	const pod = `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"loose"},"spec":{"containers":[{"name":"c","image":"busybox:stable"}]}}`

	t.Run("RestrictedPodSecurityIsEnforced", func(t *testing.T) {
		waitDefaultServiceAccount(t, hardened)
		out, err := hardened.KubectlStdin(pod, "-n", "default", "create", "-f", "-")
		if err == nil || !strings.Contains(out, `violates PodSecurity "restricted:latest"`) {
			t.Fatalf("a pod restricted forbids was not refused (err=%v):\n%s", err, out)
		}
	})

	t.Run("CheckPassesOnTheProfile", func(t *testing.T) {
		stdout, stderr, err := hardened.Run("check", "cis")
		if err != nil {
			t.Fatalf("check cis on --profile cis: %v\n%s%s", err, stdout, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		for _, line := range lines {
			if fields := strings.Fields(line); len(fields) < 2 || (fields[1] != "PASS" && fields[1] != "MANUAL") {
				t.Errorf("not PASS or MANUAL: %s", line)
			}
		}
		if passed := strings.Count(stdout, " PASS "); passed < 40 {
			t.Errorf("only %d controls passed:\n%s", passed, stdout)
		}
		t.Logf("check cis on --profile cis: %d controls\n%s", len(lines), stdout)
	})
	hardened.Kill()

	plain := harness.NewServer(t, "")
	plain.StartReady()
	t.Run("CheckListsWhatTheProfileFixes", func(t *testing.T) {
		stdout, stderr, err := plain.Run("check", "cis")
		if err == nil || !strings.Contains(stderr, "controls failed") {
			t.Fatalf("check cis on a default server: err=%v, want exit 1 saying controls failed\n%s", err, stderr)
		}
		for _, id := range []string{"1.2.3", "1.2.9", "1.2.16", "1.2.27", "1.2.29", "1.3.1", "5.2.2-5.2.9"} {
			if !failed(stdout, id) {
				t.Errorf("control %s does not FAIL on a default server:\n%s", id, stdout)
			}
		}
	})
	t.Run("TheDefaultServerAdmitsWhatTheProfileRefuses", func(t *testing.T) {
		waitDefaultServiceAccount(t, plain)
		if out, err := plain.KubectlStdin(pod, "-n", "default", "create", "-f", "-"); err != nil {
			t.Fatalf("control run: the default server refused it too: %v\n%s", err, out)
		}
	})
}

// waitDefaultServiceAccount: admission looks it up before a pod is let in.
func waitDefaultServiceAccount(t *testing.T, server *harness.Server) {
	client := server.Client()
	harness.Poll(t, 30*time.Second, "default ServiceAccount", func(ctx context.Context) (bool, error) {
		_, err := client.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}

func failed(report, id string) bool {
	for _, line := range strings.Split(report, "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == id && fields[1] == "FAIL" {
			return true
		}
	}
	return false
}
