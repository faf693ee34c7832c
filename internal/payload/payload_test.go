package payload

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
)

func TestDefaultDataDirIsConfigs(t *testing.T) {
	if defaultDataDir != config.DefaultDataDir {
		t.Errorf("payload's default data dir %q, config's %q", defaultDataDir, config.DefaultDataDir)
	}
	if dirName != datadir.PayloadDirName {
		t.Errorf("payload unpacks into <data-dir>/%s, package datadir skips <data-dir>/%s", dirName, datadir.PayloadDirName)
	}
}

func TestRootFollowsDataDirAndUser(t *testing.T) {
	t.Setenv("MONOKUBE_PAYLOAD_DIR", "")
	t.Setenv("MONOKUBE_DATA_DIR", "")
	if os.Geteuid() != 0 {
		t.Skip("the data dir rules are root's")
	}
	for args, want := range map[string]string{
		"server --data-dir /srv/mk":     "/srv/mk/payload",
		"kubectl --data-dir=/x get ns":  "/x/payload",
		"version":                       "/var/lib/monokube/payload",
		"kubectl -- get --data-dir /no": "/var/lib/monokube/payload",
	} {
		if got, _ := Root(strings.Fields(args)); got != want {
			t.Errorf("%s: %s, want %s", args, got, want)
		}
	}
	t.Setenv("MONOKUBE_PAYLOAD_DIR", "/shared")
	if got, _ := Root(nil); got != "/shared" {
		t.Errorf("MONOKUBE_PAYLOAD_DIR: %s", got)
	}
}

func TestUserRootFallsBackToAClosedTempDir(t *testing.T) {
	uid := os.Geteuid()
	cache, tmp := t.TempDir(), t.TempDir()
	if got, err := userRoot(cache, nil, tmp, uid); err != nil || got != filepath.Join(cache, "monokube") {
		t.Fatalf("writable cache: %s, %v", got, err)
	}
	// A home that cannot hold a cache (a file where a directory should be).
	home := filepath.Join(t.TempDir(), "home")
	if err := os.WriteFile(home, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fallback := filepath.Join(tmp, fmt.Sprintf("monokube-%d", uid))
	for range 2 { // made, then found
		got, err := userRoot(filepath.Join(home, ".cache"), nil, tmp, uid)
		if err != nil || got != fallback {
			t.Fatalf("no home: %s, %v; want %s", got, err, fallback)
		}
	}
	if info, err := os.Stat(fallback); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("fallback dir: %v, %v", info, err)
	}
	if _, err := userRoot("", errors.New("$HOME is not defined"), tmp, uid+1); err == nil {
		t.Error("a temp dir owned by another user was accepted")
	}
	if err := os.Chmod(fallback, 0o777); err != nil {
		t.Fatal(err)
	}
	if _, err := userRoot("", errors.New("$HOME is not defined"), tmp, uid); err == nil {
		t.Error("a temp dir others can write was accepted")
	}
	open := t.TempDir()
	link := filepath.Join(t.TempDir(), fmt.Sprintf("monokube-%d", uid))
	if err := os.Symlink(open, link); err != nil {
		t.Fatal(err)
	}
	if _, err := userRoot("", errors.New("$HOME is not defined"), filepath.Dir(link), uid); err == nil {
		t.Error("a symlink in the temp dir was accepted")
	}
}

// launcherFile writes a fake launcher with files appended as a payload.
func launcherFile(t *testing.T, files map[string]string) (*os.File, Payload) {
	t.Helper()
	var tarball bytes.Buffer
	archive := tar.NewWriter(&tarball)
	for name, content := range files {
		if err := archive.WriteHeader(&tar.Header{Name: name, Mode: 0o755, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		archive.Write([]byte(content))
	}
	archive.Close()
	var compressed bytes.Buffer
	encoder, _ := zstd.NewWriter(&compressed)
	encoder.Write(tarball.Bytes())
	encoder.Close()
	path := filepath.Join(t.TempDir(), "monokube")
	content := append([]byte("#!launcher"), compressed.Bytes()...)
	content = append(content, Footer(int64(compressed.Len()), sha256.Sum256(compressed.Bytes()))...)
	if err := os.WriteFile(path, content, 0o755); err != nil {
		t.Fatal(err)
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { file.Close() })
	found, err := Find(file)
	if err != nil {
		t.Fatal(err)
	}
	return file, found
}

func TestUnpackOnceAndReuse(t *testing.T) {
	_, found := launcherFile(t, map[string]string{"monokube": "real program", "bin/runc": "runc"})
	root := t.TempDir()
	var progress bytes.Buffer
	dir, err := Unpack(root, found, &progress)
	if err != nil {
		t.Fatal(err)
	}
	if raw, err := os.ReadFile(filepath.Join(dir, "bin", "runc")); err != nil || string(raw) != "runc" {
		t.Fatalf("bin/runc: %q, %v", raw, err)
	}
	if !strings.Contains(progress.String(), "unpacking into") {
		t.Errorf("no progress line: %q", progress.String())
	}
	progress.Reset()
	if again, err := Unpack(root, found, &progress); err != nil || again != dir || progress.Len() != 0 {
		t.Errorf("second unpack: %s, %v, %q", again, err, progress.String())
	}
}

// As root the launcher's unpack is the first thing to create a new data
// dir, which holds the cluster's keys: it must be closed to others.
func TestUnpackMakesANewDataDirPrivate(t *testing.T) {
	_, found := launcherFile(t, map[string]string{"monokube": "real program"})
	dataDir := filepath.Join(t.TempDir(), "data")
	if _, err := Unpack(filepath.Join(dataDir, dirName), found, &bytes.Buffer{}); err != nil {
		t.Fatal(err)
	}
	if info, err := os.Stat(dataDir); err != nil || info.Mode().Perm() != 0o700 {
		t.Fatalf("the data dir the unpack created: %v, %v; want 0700", info.Mode(), err)
	}
}

func TestUnpackRefusesADamagedPayload(t *testing.T) {
	_, found := launcherFile(t, map[string]string{"monokube": strings.Repeat("x", 4096)})
	damaged := found
	damaged.Digest = strings.Repeat("0", 64)
	if _, err := Unpack(t.TempDir(), damaged, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("a wrong digest: %v", err)
	}
}

func TestFindWithoutPayload(t *testing.T) {
	self, err := exec.LookPath("true")
	if err != nil {
		t.Skip(err)
	}
	file, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	if _, err := Find(file); err == nil {
		t.Error("a plain executable has a payload")
	}
}
