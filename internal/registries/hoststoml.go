package registries

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/klog/v2"
)

// ownedMark starts every hosts.toml written here, so a later start removes
// the ones no longer wanted and leaves an operator's own files alone.
const ownedMark = "# Written by monokube from the cluster's registry settings; replaced at every change.\n"

// writeHostsFiles points containerd's pulls of every registry the settings
// name at the front (frontURL), and only there: the front tries the
// registry itself last, with its credentials, so containerd trying it again
// without them would only wait out a second timeout in an air-gapped site.
// "*" becomes containerd's _default directory.
func writeHostsFiles(dir string, s Settings, frontURL, token string) error {
	wanted := map[string]bool{}
	for _, registry := range s.Registries() {
		name := hostDirectory(registry)
		wanted[name] = true
		content := ownedMark + fmt.Sprintf("server = %q\n\n[header]\n  %s = %q\n", frontURL, tokenHeader, token)
		path := filepath.Join(dir, name, "hosts.toml")
		if current, err := os.ReadFile(path); err == nil {
			if bytes.Equal(current, []byte(content)) {
				continue
			}
			if !bytes.HasPrefix(current, []byte(ownedMark)) {
				klog.InfoS("Replacing a registry's hosts.toml: the registry settings name it", "file", path)
			}
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return fmt.Errorf("registry config dir: %w", err)
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, entry := range entries {
		if wanted[entry.Name()] {
			continue
		}
		path := filepath.Join(dir, entry.Name(), "hosts.toml")
		if current, err := os.ReadFile(path); err == nil && bytes.HasPrefix(current, []byte(ownedMark)) {
			if err := os.RemoveAll(filepath.Join(dir, entry.Name())); err != nil {
				return fmt.Errorf("remove %s: %w", path, err)
			}
		}
	}
	return nil
}

// hostDirectory is containerd's directory name for a registry host:
// "host:port" as "host_port_", "*" as "_default".
func hostDirectory(registry string) string {
	if registry == "*" {
		return "_default"
	}
	if i := strings.LastIndex(registry, ":"); i > 0 && !strings.HasSuffix(registry, "]") {
		return registry[:i] + "_" + registry[i+1:] + "_"
	}
	return registry
}

// upstreamURL is where a registry itself answers; Docker Hub's name is not
// its API's.
func upstreamURL(registry string) string {
	if registry == "docker.io" {
		return "https://registry-1.docker.io"
	}
	return "https://" + registry
}
