package integration

import (
	"os"
	"strings"
	"testing"

	"github.com/monokube/monokube/test/harness"
)

// TestInstallDryRun renders the services without writing anything; this
// machine runs no init system, so a real install is refused with the
// command line to run instead.
func TestInstallDryRun(t *testing.T) {
	s := harness.NewServer(t, "")
	stdout, stderr, err := s.Run("install", "server", "--enable-worker", "--dry-run")
	if err != nil {
		t.Fatalf("install server --dry-run: %v\n%s", err, stderr)
	}
	for _, want := range []string{"# /etc/systemd/system/monokube.service", `"server" "--enable-worker"`, "Type=notify", "--data-dir"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run lacks %q:\n%s", want, stdout)
		}
	}
	if _, err := os.Stat("/etc/systemd/system/monokube.service"); err == nil {
		t.Fatal("a dry run wrote the unit")
	}

	// A worker's token never appears, in the unit or on the screen.
	first := harness.NewServer(t, "")
	first.StartReady()
	token, stderr, err := first.Run("token", "create", "--role=worker")
	if err != nil {
		t.Fatalf("token create: %v\n%s", err, stderr)
	}
	token = strings.TrimSpace(token)
	stdout, stderr, err = s.Run("install", "worker", token, "--dry-run", "--init", "openrc")
	if err != nil {
		t.Fatalf("install worker --dry-run: %v\n%s", err, stderr)
	}
	if strings.Contains(stdout+stderr, token) || !strings.Contains(stdout, "/etc/init.d/monokube-worker") || !strings.Contains(stdout, "--token-file") {
		t.Fatalf("worker dry run printed the token or lacks the token file:\n%s", stdout)
	}

	_, stderr, err = s.Run("install", "server")
	if err == nil || !strings.Contains(stderr, "no supported init system") || !strings.Contains(stderr, "server") {
		t.Fatalf("install without an init system: err %v, want a refusal with the command line\n%s", err, stderr)
	}
}
