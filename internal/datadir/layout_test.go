package datadir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestLayoutIsAbsoluteAndRunIsPerDataDir(t *testing.T) {
	a, err := New("relative/dir")
	if err != nil {
		t.Fatal(err)
	}
	if !filepath.IsAbs(a.Dir) || !strings.HasPrefix(a.PKIDir(), a.Dir+"/") {
		t.Fatalf("layout not absolute: %+v", a)
	}
	b, _ := New("/other")
	if a.Run == b.Run || !strings.HasPrefix(a.Run, runBase+"/") {
		t.Fatalf("run dirs %q and %q must differ and live under %s", a.Run, b.Run, runBase)
	}
	// containerd's shim socket dir is limited to 42 bytes.
	if len(a.ShimSockets()) > 42 {
		t.Fatalf("shim socket dir %q too long", a.ShimSockets())
	}
}

func TestCheckRemovableRefusesWhatIsNotADataDir(t *testing.T) {
	root, _ := New("/")
	if err := root.CheckRemovable(); err == nil {
		t.Error("/ must be refused")
	}
	plain, _ := New(t.TempDir())
	if err := os.WriteFile(filepath.Join(plain.Dir, "precious"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := plain.CheckRemovable(); err == nil || !strings.Contains(err.Error(), "does not look like a monokube data dir") {
		t.Errorf("a directory without monokube.lock, pki/ or agent/ must be refused, got %v", err)
	}
	missing, _ := New(filepath.Join(t.TempDir(), "never-created"))
	if err := missing.CheckRemovable(); err != nil {
		t.Errorf("a data dir that does not exist has nothing to remove: %v", err)
	}
	for _, marker := range []string{"monokube.lock", "pki", "agent"} {
		dir, _ := New(t.TempDir())
		if err := os.Mkdir(filepath.Join(dir.Dir, marker), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := dir.CheckRemovable(); err != nil {
			t.Errorf("a data dir with %s is a data dir: %v", marker, err)
		}
	}
}
