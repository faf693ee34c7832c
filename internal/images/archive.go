// Package images builds single-layer image archives from a directory: the
// build (hack/mkimage) makes the bundled pause image with it, the tests
// their own images. Importing archives into a node is internal/node's job.
package images

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// Spec describes a single-layer image made from a root filesystem directory.
type Spec struct {
	// Reference is the image name and tag, like "monokube.io/pause:3.10".
	Reference  string
	RootFS     string
	Entrypoint []string
	Cmd        []string
	Env        []string
}

// WriteArchive builds the image and writes it as a docker-archive tarball
// (what `docker save` writes), which containerd imports without a registry.
func WriteArchive(spec Spec, out string) error {
	ref, err := name.ParseReference(spec.Reference)
	if err != nil {
		return fmt.Errorf("image reference %q: %w", spec.Reference, err)
	}
	layerTar, err := tarDirectory(spec.RootFS)
	if err != nil {
		return err
	}
	// Stored, not deflated: the build zstd-compresses the whole archive
	// (hack/pack), which does far better on the raw layer than on gzip.
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithCompressionLevel(gzip.NoCompression))
	if err != nil {
		return fmt.Errorf("layer: %w", err)
	}
	image, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		return fmt.Errorf("append layer: %w", err)
	}
	configFile, err := image.ConfigFile()
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	configFile = configFile.DeepCopy()
	configFile.OS, configFile.Architecture = "linux", "amd64"
	configFile.Config = v1.Config{Entrypoint: spec.Entrypoint, Cmd: spec.Cmd, Env: spec.Env}
	image, err = mutate.ConfigFile(image, configFile)
	if err != nil {
		return fmt.Errorf("set config: %w", err)
	}
	if err := tarball.WriteToFile(out, ref, image); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
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
