package integration

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/monokube/monokube/test/harness"
)

// TestDefaultConfigValidates runs `default-config | config validate`.
func TestDefaultConfigValidates(t *testing.T) {
	bin := harness.Binary(t)
	out, err := exec.Command(bin, "default-config").Output()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "default.yaml")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "config", "validate", "--config", path).CombinedOutput(); err != nil {
		t.Fatalf("default config does not validate: %v\n%s", err, out)
	}
}

// TestConfigValidateNamesFieldAndLine checks the exit code and message of
// `config validate` on a file with two mistakes.
func TestConfigValidateNamesFieldAndLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	bad := "apiVersion: monokube.io/v1beta1\nkind: ClusterConfig\nspec:\n  api:\n    port: 70000\n  network:\n    podCidr: 10.42.0.0/16\n"
	if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(harness.Binary(t), "config", "validate", "--config", path).CombinedOutput()
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() != 1 {
		t.Fatalf("want exit code 1, got %v\n%s", err, out)
	}
	for _, want := range []string{path + ":5: spec.api.port: must be between 1 and 65535", path + ":7: spec.network.podCidr: unknown field", `did you mean "podCIDR"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
