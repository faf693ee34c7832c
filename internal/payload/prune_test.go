package payload

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUnpackOfANewBuildRemovesUnusedEarlierOnes(t *testing.T) {
	root := t.TempDir()
	mkdir := func(name string, complete bool) string {
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if complete {
			if err := os.WriteFile(filepath.Join(dir, ".complete"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	unused := mkdir("0000000000000001", true)
	crashed := mkdir("0000000000000002.tmp", false)
	foreign := mkdir("not-an-unpack", false)
	busy := mkdir("0000000000000003", true)
	// A process running from an earlier unpack, as a shim of a server
	// that was not restarted yet would be.
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep binary")
	}
	raw, err := os.ReadFile(sleep)
	if err != nil {
		t.Fatal(err)
	}
	running := filepath.Join(busy, "bin", "sleep")
	if err := os.WriteFile(running, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(running, "60")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	_, found := launcherFile(t, map[string]string{"monokube": "new build"})
	var progress bytes.Buffer
	dir, err := Unpack(root, found, &progress)
	if err != nil {
		t.Fatal(err)
	}
	for path, wantKept := range map[string]bool{unused: false, crashed: false, foreign: true, busy: true, dir: true} {
		_, err := os.Stat(path)
		if kept := err == nil; kept != wantKept {
			t.Errorf("%s: kept %v, want %v", filepath.Base(path), kept, wantKept)
		}
	}
	if !strings.Contains(progress.String(), "removed the unpack of an earlier build: "+unused) {
		t.Errorf("no progress line for the removal: %q", progress.String())
	}
}
