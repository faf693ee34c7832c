package images

import (
	"fmt"
	"os"
	"path/filepath"
)

// BusyboxPath is where Debian's busybox-static package installs the static
// busybox the test images are made of.
const BusyboxPath = "/bin/busybox"

// BusyboxRootFS lays out a busybox root filesystem in dir: the static
// busybox executable at path, a symlink per applet, and the files a shell
// image is expected to have (/tmp, /etc/passwd with root and nobody).
func BusyboxRootFS(path, dir string, applets []string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("busybox (Debian's busybox-static installs %s): %w", BusyboxPath, err)
	}
	for _, sub := range []string{"bin", "tmp", "etc", "www"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		return err
	}
	for _, applet := range applets {
		if applet == "busybox" {
			continue
		}
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", applet)); err != nil {
			return fmt.Errorf("applet %s: %w", applet, err)
		}
	}
	files := map[string]string{
		"passwd": "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
		"group":  "root:x:0:\nnogroup:x:65534:\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, "etc", name), []byte(content), 0o644); err != nil {
			return err
		}
	}
	return nil
}
