package addons

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/manifests"
)

// Every template renders into objects the deployer accepts.
func TestTemplatesDecode(t *testing.T) {
	settings := mustSettings(t, config.Default().Spec)
	for _, file := range append(slices.Collect(maps.Values(manifestOf)), alwaysWritten...) {
		content, err := renderTemplate(file, settings)
		if err != nil {
			t.Fatal(err)
		}
		objects, err := manifests.Decode(file, content)
		if err != nil {
			t.Fatal(err)
		}
		if len(objects) == 0 {
			t.Fatalf("%s has no objects", file)
		}
	}
}

// The build tags the images with the names the manifests use.
func TestImagesMatchBuild(t *testing.T) {
	makefile, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for variable, image := range map[string]string{"COREDNS_IMAGE": CoreDNSImage, "VOLUME_HELPER_IMAGE": VolumeHelperImage, "METRICS_SERVER_IMAGE": MetricsServerImage, "TRAEFIK_IMAGE": TraefikImage} {
		if !strings.Contains(string(makefile), variable+" := "+image+"\n") {
			t.Errorf("Makefile's %s is not %s", variable, image)
		}
	}
}

func TestWriteHonoursConfigAndSkip(t *testing.T) {
	dir := t.TempDir()
	spec := config.Default().Spec
	if err := Write(dir, spec.Addons, mustSettings(t, spec)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "coredns.yaml")
	if _, err := os.Stat(path); err != nil {
		t.Fatal(err)
	}
	if err := spec.Addons.Disable([]string{"coredns"}); err != nil {
		t.Fatal(err)
	}
	if err := Write(dir, spec.Addons, mustSettings(t, spec)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("disabled add-on's manifest still there: %v", err)
	}
	spec = config.Default().Spec
	os.WriteFile(path+".skip", []byte("mine"), 0o644)
	if err := Write(dir, spec.Addons, mustSettings(t, spec)); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("manifest written although the user took it over: %v", err)
	}
	if err := spec.Addons.Disable([]string{"dns"}); err == nil || !strings.Contains(err.Error(), "coredns, metrics-server") {
		t.Fatalf("unknown add-on: %v", err)
	}
}

func mustSettings(t *testing.T, spec config.Spec) Settings {
	t.Helper()
	settings, err := NewSettings(spec, map[string][]byte{GatewayAPICRDs: []byte("# gateway\n"), TraefikCRDs: []byte("# traefik\n")})
	if err != nil {
		t.Fatal(err)
	}
	return settings
}
