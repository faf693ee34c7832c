package images

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Two images on one base layer: every reference is in the archive, the
// base is stored once, and each image has the base below its own layer.
func TestWriteArchiveSharesBaseLayers(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base")
	if err := os.MkdirAll(filepath.Join(base, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(base, "etc", "os-release"), []byte("ID=test\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	baseLayer := filepath.Join(dir, "base.layer")
	if err := WriteLayer(base, baseLayer); err != nil {
		t.Fatal(err)
	}
	top := filepath.Join(dir, "top")
	if err := os.MkdirAll(top, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(top, "app"), []byte("#!/bin/sh\n"), 0o4755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "images.tar")
	err := WriteArchive(out,
		Spec{Reference: "example.com/a:1", Aliases: []string{"example.com/a:2"}, BaseLayers: []string{baseLayer}, RootFS: top, User: "1234"},
		Spec{Reference: "example.com/b:1", BaseLayers: []string{baseLayer}},
	)
	if err != nil {
		t.Fatal(err)
	}
	layers := map[string]bool{}
	for _, want := range []struct {
		ref    string
		layers int
	}{{"example.com/a:1", 2}, {"example.com/a:2", 2}, {"example.com/b:1", 1}} {
		tag, err := name.NewTag(want.ref)
		if err != nil {
			t.Fatal(err)
		}
		image, err := tarball.ImageFromPath(out, &tag)
		if err != nil {
			t.Fatalf("%s not in the archive: %v", want.ref, err)
		}
		imageLayers, err := image.Layers()
		if err != nil {
			t.Fatal(err)
		}
		if len(imageLayers) != want.layers {
			t.Errorf("%s has %d layers, want %d", want.ref, len(imageLayers), want.layers)
		}
		for _, layer := range imageLayers {
			digest, err := layer.DiffID()
			if err != nil {
				t.Fatal(err)
			}
			layers[digest.String()] = true
		}
		config, err := image.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		if want.ref != "example.com/b:1" && config.Config.User != "1234" {
			t.Errorf("%s: user %q, want 1234", want.ref, config.Config.User)
		}
	}
	if len(layers) != 2 {
		t.Errorf("%d distinct layers, want 2 (the base shared)", len(layers))
	}
}
