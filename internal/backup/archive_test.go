package backup

import (
	"archive/tar"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/internal/version"
)

func writeTestArchive(t *testing.T) (archive string) {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "state.db")
	if err := os.WriteFile(file, []byte("database"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := &writer{}
	if err := w.add(sqliteEntry, file); err != nil {
		t.Fatal(err)
	}
	archive = filepath.Join(dir, "a.tar.gz")
	if err := w.write(archive, Manifest{Format: formatVersion, Storage: "sqlite", Kubernetes: version.Kubernetes(), Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return archive
}

func TestExtractChecksEveryEntry(t *testing.T) {
	archive := writeTestArchive(t)
	if _, err := extract(archive, t.TempDir()); err != nil {
		t.Fatalf("a good archive: %v", err)
	}
	raw, _ := os.ReadFile(archive)
	truncated := filepath.Join(t.TempDir(), "truncated.tar.gz")
	_ = os.WriteFile(truncated, raw[:len(raw)-20], 0o600)
	if _, err := extract(truncated, t.TempDir()); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("a truncated archive: %v", err)
	}

	// Same manifest, different content: the checksum catches it.
	tampered := filepath.Join(t.TempDir(), "tampered.tar.gz")
	rewrite(t, archive, tampered, func(name string, body []byte) []byte {
		if name == sqliteEntry {
			return []byte("DATABASE")
		}
		return body
	})
	if _, err := extract(tampered, t.TempDir()); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("a tampered archive: %v", err)
	}
}

func TestCompatibleRefusesOtherFormatsAndVersions(t *testing.T) {
	if err := compatible(Manifest{Format: formatVersion + 1}); err == nil {
		t.Fatal("a newer format was accepted")
	}
	if err := compatible(Manifest{Format: formatVersion, Kubernetes: "v1.20.0"}); err == nil || !strings.Contains(err.Error(), "v1.20.0") {
		t.Fatalf("another Kubernetes minor: %v", err)
	}
}

// rewrite copies a tar.gz, passing each entry's body through edit.
func rewrite(t *testing.T, from, to string, edit func(name string, body []byte) []byte) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	zw := gzip.NewWriter(out)
	tw := tar.NewWriter(zw)
	tr := tar.NewReader(zr)
	for {
		header, err := tr.Next()
		if err != nil {
			break
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		body = edit(header.Name, body)
		header.Size = int64(len(body))
		_ = tw.WriteHeader(header)
		_, _ = tw.Write(body)
	}
	tw.Close()
	zw.Close()
}
