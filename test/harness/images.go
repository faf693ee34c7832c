package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/monokube/monokube/internal/images"
)

// BusyboxImage is the test image: Debian's static busybox with its applets.
const BusyboxImage = "docker.io/library/busybox:monokube-test"

// busyboxApplets are linked to busybox in the image.
var busyboxApplets = []string{"sh", "echo", "sleep", "cat", "ls", "nc", "httpd", "wget", "hostname", "ip", "env", "true", "false", "mkdir", "grep", "ps", "nslookup", "dd", "md5sum", "timeout", "rm"}

// WriteBusyboxArchive builds BusyboxImage from /bin/busybox (Debian package
// busybox-static) as a docker-archive in dir, where a node imports it at
// start: no registry is reachable from tests.
func WriteBusyboxArchive(t testing.TB, dir string) {
	t.Helper()
	WriteBusyboxArchiveAs(t, BusyboxImage, filepath.Join(dir, "busybox.tar"))
}

// WriteBusyboxArchiveAs writes the busybox image under another reference to path.
func WriteBusyboxArchiveAs(t testing.TB, reference, path string) {
	t.Helper()
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	if err := images.BusyboxRootFS(images.BusyboxPath, rootfs, busyboxApplets); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	spec := images.Spec{Reference: reference, RootFS: rootfs, Cmd: []string{"sh"}, Env: []string{"PATH=/bin"}}
	if err := images.WriteArchive(path, spec); err != nil {
		t.Fatal(err)
	}
}

// WebhookImage is the test admission webhook (test/webhook), built by
// WriteWebhookArchive.
const WebhookImage = "monokube.io/test-webhook:1"

// WriteWebhookArchive builds test/webhook as a static program and writes
// WebhookImage with it into dir, where a node imports it at start.
func WriteWebhookArchive(t testing.TB, dir string) {
	t.Helper()
	rootfs := filepath.Join(t.TempDir(), "rootfs")
	build := exec.Command("go", "build", "-o", filepath.Join(rootfs, "webhook"), "github.com/monokube/monokube/test/webhook")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the test webhook: %v\n%s", err, out)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	spec := images.Spec{Reference: WebhookImage, RootFS: rootfs, Cmd: []string{"/webhook"}}
	if err := images.WriteArchive(filepath.Join(dir, "webhook.tar"), spec); err != nil {
		t.Fatal(err)
	}
}
