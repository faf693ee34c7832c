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
	"strings"
	"text/template"

	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/addons/localstorage"
	"github.com/monokube/monokube/internal/addons/traefik"
	"github.com/monokube/monokube/internal/config"
)

// Images the add-ons run; the build tags them the same (Makefile).
const (
	CoreDNSImage       = "monokube.io/coredns:1.15.0"
	VolumeHelperImage  = "monokube.io/volume-helper:1"
	MetricsServerImage = "monokube.io/metrics-server:0.8.0"
	TraefikImage       = "monokube.io/traefik:3.6.12"
)

// Bundled manifests the build copies from pinned modules (package bundle):
// the Gateway API's standard CRDs, kept even with Traefik off (another
// controller may serve them, and removing them would delete every Gateway
// and route), and Traefik's own CRDs, which go with Traefik.
const (
	GatewayAPICRDs = "gateway-api-crds.yaml"
	TraefikCRDs    = "traefik-crds.yaml"
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
	// TraefikChart is the chart archive, base64 (package traefik).
	TraefikChart           string
	TraefikImageRepository string
	TraefikImageTag        string
	// Bundled holds the bundled manifests by file name; one missing (a
	// build without them) is not written.
	Bundled map[string][]byte
}

// NewSettings takes what the templates need from the cluster's config;
// bundled are the bundled manifests (Bundled).
func NewSettings(spec config.Spec, bundled map[string][]byte) (Settings, error) {
	chart, err := traefik.ArchiveBase64()
	if err != nil {
		return Settings{}, err
	}
	repository, tag, _ := strings.Cut(TraefikImage, ":")
	return Settings{
		ClusterDNS:              spec.Network.ClusterDNS,
		ClusterDomain:           spec.Network.ClusterDomain,
		CoreDNSImage:            CoreDNSImage,
		MetricsServerImage:      MetricsServerImage,
		LocalStorageProvisioner: localstorage.ProvisionerName,
		TraefikChart:            chart,
		TraefikImageRepository:  repository,
		TraefikImageTag:         tag,
		Bundled:                 bundled,
	}, nil
}

// manifestOf names the template of each add-on that ships as a manifest;
// the others run in the server process.
var manifestOf = map[string]string{
	config.AddonCoreDNS:       "coredns.yaml",
	config.AddonMetricsServer: "metrics-server.yaml",
	config.AddonLocalStorage:  "local-storage.yaml",
	config.AddonTraefik:       "traefik.yaml",
}

// bundledOf names the bundled manifest that goes with an add-on.
var bundledOf = map[string]string{
	config.AddonTraefik: TraefikCRDs,
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
	if err := writeBundled(dir, GatewayAPICRDs, settings); err != nil {
		return err
	}
	for _, name := range config.AddonNames {
		file, ok := manifestOf[name]
		if !ok {
			continue
		}
		if !spec.Enabled(name) {
			for _, f := range []string{file, bundledOf[name]} {
				if err := removeManifest(dir, f, name); err != nil {
					return err
				}
			}
			continue
		}
		if err := writeManifest(dir, file, settings); err != nil {
			return fmt.Errorf("add-on %s: %w", name, err)
		}
		if extra, ok := bundledOf[name]; ok {
			if err := writeBundled(dir, extra, settings); err != nil {
				return fmt.Errorf("add-on %s: %w", name, err)
			}
		}
	}
	return nil
}

// removeManifest removes an add-on's manifest, which removes what it
// holds from the cluster.
func removeManifest(dir, file, addon string) error {
	if file == "" {
		return nil
	}
	path := filepath.Join(dir, file)
	if err := os.Remove(path); err == nil {
		klog.InfoS("Add-on disabled; removing it from the cluster", "addon", addon, "manifest", path)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove disabled add-on %s: %w", addon, err)
	}
	return nil
}

// writeBundled writes a bundled manifest as the build made it, unless the
// user took it over (<file>.skip) or the build carries none.
func writeBundled(dir, file string, settings Settings) error {
	content, ok := settings.Bundled[file]
	if !ok {
		return nil
	}
	return writeOwned(dir, file, func() ([]byte, error) { return content, nil })
}

// writeManifest renders a template into dir, unless the user took the file
// over by creating <file>.skip.
func writeManifest(dir, file string, settings Settings) error {
	return writeOwned(dir, file, func() ([]byte, error) { return renderTemplate(file, settings) })
}

// writeOwned writes what content gives into dir/file, unless the user took
// the file over by creating <file>.skip (then content is not even made).
func writeOwned(dir, file string, content func() ([]byte, error)) error {
	path := filepath.Join(dir, file)
	if _, err := os.Stat(path + ".skip"); err == nil {
		klog.InfoS("Manifest taken over by the user (.skip file); not writing it", "skip", path+".skip")
		return nil
	}
	raw, err := content()
	if err != nil {
		return err
	}
	if err := writeIfChanged(path, raw); err != nil {
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
