// Package addons writes the bundled add-ons (cluster DNS, metrics, local
// storage) as manifests into the server's manifests directory, where the
// manifests deployer applies them like any user's file, and removes the
// ones the config turns off.
package addons

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"text/template"

	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/addons/localstorage"
	"github.com/monokube/monokube/internal/config"
)

// Images the add-ons run; the build tags them the same (Makefile).
const (
	CoreDNSImage       = "monokube.io/coredns:1.15.0"
	VolumeHelperImage  = "monokube.io/volume-helper:1"
	MetricsServerImage = "monokube.io/metrics-server:0.8.0"
)

//go:embed *.yaml
var templates embed.FS

// Settings fill the templates.
type Settings struct {
	ClusterDNS              string
	ClusterDomain           string
	CoreDNSImage            string
	MetricsServerImage      string
	LocalStorageProvisioner string
}

// NewSettings takes what the templates need from the cluster's config.
func NewSettings(spec config.Spec) Settings {
	return Settings{
		ClusterDNS:              spec.Network.ClusterDNS,
		ClusterDomain:           spec.Network.ClusterDomain,
		CoreDNSImage:            CoreDNSImage,
		MetricsServerImage:      MetricsServerImage,
		LocalStorageProvisioner: localstorage.ProvisionerName,
	}
}

// manifestOf names the template of each add-on that ships as a manifest;
// the others run in the server process.
var manifestOf = map[string]string{
	config.AddonCoreDNS:       "coredns.yaml",
	config.AddonMetricsServer: "metrics-server.yaml",
	config.AddonLocalStorage:  "local-storage.yaml",
}

// alwaysWritten are manifests that do not depend on an add-on switch.
var alwaysWritten = []string{"helm-crds.yaml"}

// Write brings dir in line with the config: the manifest of every enabled
// add-on is written (unless the user took it over by creating
// <name>.skip), and the manifest of every disabled one is removed, which
// removes the add-on from the cluster.
func Write(dir string, spec config.AddonsSpec, settings Settings) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create manifests directory: %w", err)
	}
	for _, file := range alwaysWritten {
		if err := writeManifest(dir, file, settings); err != nil {
			return err
		}
	}
	for _, name := range config.AddonNames {
		file, ok := manifestOf[name]
		if !ok {
			continue
		}
		path := filepath.Join(dir, file)
		if !spec.Enabled(name) {
			if err := os.Remove(path); err == nil {
				klog.InfoS("Add-on disabled; removing it from the cluster", "addon", name, "manifest", path)
			} else if !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("remove disabled add-on %s: %w", name, err)
			}
			continue
		}
		if err := writeManifest(dir, file, settings); err != nil {
			return fmt.Errorf("add-on %s: %w", name, err)
		}
	}
	return nil
}

// writeManifest renders a template into dir, unless the user took the file
// over by creating <file>.skip.
func writeManifest(dir, file string, settings Settings) error {
	path := filepath.Join(dir, file)
	if _, err := os.Stat(path + ".skip"); err == nil {
		klog.InfoS("Manifest taken over by the user (.skip file); not writing it", "skip", path+".skip")
		return nil
	}
	content, err := renderTemplate(file, settings)
	if err != nil {
		return err
	}
	if err := writeIfChanged(path, content); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

func renderTemplate(file string, settings Settings) ([]byte, error) {
	tmpl, err := template.New(file).Option("missingkey=error").ParseFS(templates, file)
	if err != nil {
		return nil, fmt.Errorf("add-on template %s: %w", file, err)
	}
	var out bytes.Buffer
	if err := tmpl.Execute(&out, settings); err != nil {
		return nil, fmt.Errorf("add-on template %s: %w", file, err)
	}
	return out.Bytes(), nil
}

// writeIfChanged leaves an identical file untouched, so its stack is not
// applied again for nothing; a changed one is replaced atomically.
func writeIfChanged(path string, content []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, content) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, content, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
