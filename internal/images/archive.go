// Package images builds single-layer image archives from a directory: the
// build (hack/mkimage) makes the bundled pause image with it, the tests
// their own images. Importing archives into a node is internal/node's job.
package images

import (
	"archive/tar"
	"bytes"
	"cmp"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Spec describes an image made from a root filesystem directory, optionally
// on top of layers that already exist as tarballs.
type Spec struct {
	// Reference is the image name and tag, like "monokube.io/pause:3.10".
	Reference string
	// Aliases are more references to the same image in the same archive.
	Aliases []string
	// BaseLayers are uncompressed layer tarballs below RootFS, bottom first.
	// Images built on the same base file share that layer in a node's store.
	BaseLayers []string
	// RootFS is the top layer's directory; empty for no layer of its own.
	RootFS     string
	Entrypoint []string
	Cmd        []string
	Env        []string
	User       string
	// Architecture is the image's (GOARCH spelling); empty means this
	// program's own, which is right for images a node builds and runs.
	Architecture string
}

// WriteArchive builds the images and writes them into one docker-archive
// tarball (what `docker save` writes), which containerd imports without a
// registry. Layers the images share are stored once.
func WriteArchive(out string, specs ...Spec) error {
	refs := map[name.Reference]v1.Image{}
	for _, spec := range specs {
		image, err := build(spec)
		if err != nil {
			return err
		}
		for _, reference := range append([]string{spec.Reference}, spec.Aliases...) {
			ref, err := name.ParseReference(reference)
			if err != nil {
				return fmt.Errorf("image reference %q: %w", reference, err)
			}
			refs[ref] = image
		}
	}
	if err := tarball.MultiRefWriteToFile(out, refs); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}

func build(spec Spec) (v1.Image, error) {
	// Stored, not deflated: the build zstd-compresses the whole archive
	// (hack/pack), which does far better on raw layers than on gzip.
	stored := tarball.WithCompressionLevel(gzip.NoCompression)
	var layers []v1.Layer
	for _, base := range spec.BaseLayers {
		layer, err := tarball.LayerFromFile(base, stored)
		if err != nil {
			return nil, fmt.Errorf("%s: layer %s: %w", spec.Reference, base, err)
		}
		layers = append(layers, layer)
	}
	if spec.RootFS != "" {
		layerTar, err := tarDirectory(spec.RootFS)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", spec.Reference, err)
		}
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(layerTar)), nil
		}, stored)
		if err != nil {
			return nil, fmt.Errorf("%s: layer: %w", spec.Reference, err)
		}
		layers = append(layers, layer)
	}
	image, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		return nil, fmt.Errorf("%s: append layers: %w", spec.Reference, err)
	}
	configFile, err := image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("%s: config: %w", spec.Reference, err)
	}
	configFile = configFile.DeepCopy()
	configFile.OS, configFile.Architecture = "linux", cmp.Or(spec.Architecture, runtime.GOARCH)
	configFile.Config = v1.Config{Entrypoint: spec.Entrypoint, Cmd: spec.Cmd, Env: spec.Env, User: spec.User}
	image, err = mutate.ConfigFile(image, configFile)
	if err != nil {
		return nil, fmt.Errorf("%s: set config: %w", spec.Reference, err)
	}
	return image, nil
}

// WriteLayer packs dir as an uncompressed layer tarball at out, for images
// that share it through Spec.BaseLayers.
func WriteLayer(dir, out string) error {
	layerTar, err := tarDirectory(dir)
	if err != nil {
		return err
	}
	if err := os.WriteFile(out, layerTar, 0o644); err != nil {
		return fmt.Errorf("write layer: %w", err)
	}
	return nil
}

// tarDirectory packs dir as a layer with root-owned entries, keeping
// symlinks (busybox applets are symlinks) and file modes.
func tarDirectory(dir string) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	err := filepath.WalkDir(dir, func(path string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := entry.Info()
		if err != nil {
			return err
		}
		link := ""
		if info.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(path); err != nil {
				return err
			}
		}
		header, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return err
		}
		header.Name, header.Uid, header.Gid, header.Uname, header.Gname = filepath.ToSlash(rel), 0, 0, "", ""
		// No times from the machine that built it: equal trees give equal
		// layers, so two builds of one commit give the same images.
		header.ModTime, header.AccessTime, header.ChangeTime = time.Unix(0, 0), time.Time{}, time.Time{}
		if err := tw.WriteHeader(header); err != nil {
			return err
		}
		if info.Mode().IsRegular() {
			file, err := os.Open(path)
			if err != nil {
				return err
			}
			defer file.Close()
			_, err = io.Copy(tw, file)
			return err
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pack %s: %w", dir, err)
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
