package harness

import (
	"archive/tar"
	"compress/gzip"
	"crypto/rand"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/monokube/monokube/internal/images"
)

// SleepImageName is the name SleepImage is built under; what a registry
// serves it as is the test's choice (Registry.Push).
const SleepImageName = "monokube.io/registry-test/sleep:1"

// SleepImage is a small image to push to a Registry: the busybox of
// BusyboxImage whose command is `sleep 3600`, plus a file of random bytes
// (/etc/image-id), so that its layer is new to every node and a pull
// really fetches it.
func SleepImage(t testing.TB) v1.Image {
	t.Helper()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := images.BusyboxRootFS(images.BusyboxPath, rootfs, busyboxApplets); err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	if err := os.WriteFile(filepath.Join(rootfs, "etc", "image-id"), []byte(hex.EncodeToString(id)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(dir, "sleep.tar")
	spec := images.Spec{Reference: SleepImageName, RootFS: rootfs, Cmd: []string{"sleep", "3600"}, Env: []string{"PATH=/bin"}}
	if err := images.WriteArchive(archive, spec); err != nil {
		t.Fatal(err)
	}
	tag, err := name.NewTag(SleepImageName)
	if err != nil {
		t.Fatal(err)
	}
	image, err := tarball.ImageFromPath(archive, &tag)
	if err != nil {
		t.Fatalf("read %s: %v", archive, err)
	}
	return image
}

// BigImage is SleepImage with a layer of sizeMiB MiB of random bytes on
// top (/data/random), for measuring pulls of a large image: random bytes
// do not compress, so the registry serves about sizeMiB MiB. The layer is
// stored, not deflated, and kept in a temp file rather than in memory.
func BigImage(t testing.TB, sizeMiB int) v1.Image {
	t.Helper()
	path := filepath.Join(t.TempDir(), "random-layer.tar")
	file, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	size := int64(sizeMiB) << 20
	tw := tar.NewWriter(file)
	for _, header := range []*tar.Header{
		{Typeflag: tar.TypeDir, Name: "data/", Mode: 0o755},
		{Typeflag: tar.TypeReg, Name: "data/random", Mode: 0o644, Size: size},
	} {
		if err := tw.WriteHeader(header); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := io.CopyN(tw, rand.Reader, size); err != nil {
		t.Fatal(err)
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := file.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromFile(path, tarball.WithCompressionLevel(gzip.NoCompression))
	if err != nil {
		t.Fatalf("layer %s: %v", path, err)
	}
	image, err := mutate.AppendLayers(SleepImage(t), layer)
	if err != nil {
		t.Fatal(err)
	}
	return image
}
