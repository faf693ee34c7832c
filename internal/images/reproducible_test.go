package images

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// The same tree built twice, in another directory at another time, gives
// the same archive: a release rebuilt from one commit has the same images.
func TestWriteArchiveIsReproducible(t *testing.T) {
	build := func(when time.Time) []byte {
		dir := t.TempDir()
		root := filepath.Join(dir, "rootfs")
		if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, file := range []string{filepath.Join(root, "etc", "config"), filepath.Join(root, "app")} {
			if err := os.WriteFile(file, []byte("same content\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Chtimes(file, when, when); err != nil {
				t.Fatal(err)
			}
		}
		out := filepath.Join(dir, "image.tar")
		if err := WriteArchive(out, Spec{Reference: "example.com/app:1", RootFS: root, Entrypoint: []string{"/app"}, Architecture: "arm64"}); err != nil {
			t.Fatal(err)
		}
		data, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	first := build(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	second := build(time.Date(2027, 6, 7, 8, 9, 10, 0, time.UTC))
	if !bytes.Equal(first, second) {
		t.Fatal("two builds of the same tree at different times gave different archives")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "image.tar"), first, 0o644); err != nil {
		t.Fatal(err)
	}
	tag, _ := name.NewTag("example.com/app:1")
	image, err := tarball.ImageFromPath(filepath.Join(dir, "image.tar"), &tag)
	if err != nil {
		t.Fatal(err)
	}
	config, err := image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if config.Architecture != "arm64" || config.OS != "linux" {
		t.Errorf("platform %s/%s, want linux/arm64", config.OS, config.Architecture)
	}
}
