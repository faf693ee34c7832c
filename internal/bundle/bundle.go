// Package bundle holds the executables and image archives our build makes
// from pinned upstream modules (runc, CNI plugins, the pause image) and
// unpacks them into the data dir, so nothing is taken from the host or
// downloaded at run time.
package bundle

import (
	"archive/tar"
	"embed"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/monokube/monokube/internal/nettools"
)

// assets is filled by `make bundle`: assets/bin/*, assets/nettools.tar
// and assets/images/*.tar, each zstd-compressed.
//
//go:embed assets
var assets embed.FS

// digest is the content hash of the executables, written by the build.
func digest() (string, error) {
	raw, err := assets.ReadFile("assets/digest")
	if err != nil {
		return "", fmt.Errorf("bundled executables missing (build with `make build`): %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}

// Executables lists the bundled executables by name.
func Executables() ([]string, error) {
	entries, err := assets.ReadDir("assets/bin")
	if err != nil {
		return nil, fmt.Errorf("bundled executables missing (build with `make build`): %w", err)
	}
	var names []string
	for _, entry := range entries {
		names = append(names, strings.TrimSuffix(entry.Name(), ".zst"))
	}
	return names, nil
}

// Unpacked returns the directory below binRoot that Extract filled for
// this binary, or an error when it has not run: clients such as crictl use
// what the running node unpacked and never write into its data dir.
func Unpacked(binRoot string) (string, error) {
	dir, err := unpackDir(binRoot)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err != nil {
		return "", fmt.Errorf("this binary's executables are not unpacked in %s (does a node of this version run there?): %w", binRoot, err)
	}
	return dir, nil
}

// unpackDir is <binRoot>/<content hash of the executables>.
func unpackDir(binRoot string) (string, error) {
	sum, err := digest()
	if err != nil {
		return "", err
	}
	return filepath.Join(binRoot, sum), nil
}

// PutFirstInPath puts dir (Extract's) first in the process's PATH, so the
// bundled executables are run instead of the host's of the same name.
func PutFirstInPath(dir string) error {
	path := os.Getenv("PATH")
	if slices.Contains(filepath.SplitList(path), dir) {
		return nil
	}
	return os.Setenv("PATH", dir+string(os.PathListSeparator)+path)
}

// Extract unpacks the executables into <binRoot>/<content hash>/ and
// returns that directory. The hash makes a new monokube version use its own
// helpers, never an older copy; an existing complete directory is reused.
func Extract(binRoot string) (string, error) {
	dir, err := unpackDir(binRoot)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, ".complete")); err == nil {
		return dir, nil
	}
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return "", err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", tmp, err)
	}
	names, err := Executables()
	if err != nil {
		return "", err
	}
	for _, name := range names {
		if err := unpack(name, filepath.Join(tmp, name)); err != nil {
			return "", fmt.Errorf("unpack %s: %w", name, err)
		}
	}
	if err := unpackNetTools(tmp); err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(tmp, ".complete"), nil, 0o644); err != nil {
		return "", err
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return "", fmt.Errorf("install %s: %w", dir, err)
	}
	return dir, nil
}

// unpack decompresses one embedded executable (zstd, see hack/pack).
func unpack(name, target string) error {
	compressed, err := assets.Open(path.Join("assets/bin", name+".zst"))
	if err != nil {
		return err
	}
	defer compressed.Close()
	decoder, err := zstd.NewReader(compressed)
	if err != nil {
		return err
	}
	defer decoder.Close()
	return writeFile(target, decoder, 0o755)
}

func writeFile(target string, content io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	file, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(file, content); err != nil {
		file.Close()
		return err
	}
	return file.Close()
}

// HasNetTools reports whether this build carries the network tools.
func HasNetTools() bool {
	_, err := fs.Stat(assets, "assets/"+nettools.Dir+".tar.zst")
	return err == nil
}

// unpackNetTools unpacks the network tools' tree (package nettools) into
// dir and links their command names to the launcher beside them.
func unpackNetTools(dir string) error {
	compressed, err := assets.Open("assets/" + nettools.Dir + ".tar.zst")
	if err != nil {
		return fmt.Errorf("bundled network tools missing (build with `make build`): %w", err)
	}
	defer compressed.Close()
	decoder, err := zstd.NewReader(compressed, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return err
	}
	defer decoder.Close()
	root := filepath.Join(dir, nettools.Dir)
	archive := tar.NewReader(decoder)
	for {
		header, err := archive.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("unpack network tools: %w", err)
		}
		if !filepath.IsLocal(header.Name) {
			return fmt.Errorf("unpack network tools: unexpected path %q", header.Name)
		}
		target := filepath.Join(root, header.Name)
		if header.Typeflag == tar.TypeDir {
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := writeFile(target, archive, os.FileMode(header.Mode).Perm()); err != nil {
			return fmt.Errorf("unpack network tools: %w", err)
		}
	}
	return nettools.Link(dir)
}

// Image is a bundled image archive.
type Image struct {
	// File is the archive's name in the bundle ("pause.tar"), as it is
	// after decompression.
	File string
	// Size is what the archive adds to the binary (compressed).
	Size int64
	// SHA256 is the archive's, computed by the build (assets/images.sha256).
	SHA256 string
}

// Images lists the bundled image archives.
func Images() ([]Image, error) {
	entries, err := assets.ReadDir("assets/images")
	if err != nil {
		return nil, fmt.Errorf("bundled images missing (build with `make build`): %w", err)
	}
	sums, err := imageSums()
	if err != nil {
		return nil, err
	}
	var images []Image
	for _, entry := range entries {
		info, err := entry.Info()
		if err != nil {
			return nil, err
		}
		file := strings.TrimSuffix(entry.Name(), ".zst")
		images = append(images, Image{File: file, Size: info.Size(), SHA256: sums[file]})
	}
	slices.SortFunc(images, func(a, b Image) int { return strings.Compare(a.File, b.File) })
	return images, nil
}

// imageSums reads the build's `sha256sum` of the image archives.
func imageSums() (map[string]string, error) {
	raw, err := assets.ReadFile("assets/images.sha256")
	if err != nil {
		return nil, fmt.Errorf("bundled image checksums missing (build with `make build`): %w", err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if sum, file, ok := strings.Cut(line, "  "); ok {
			sums[file] = sum
		}
	}
	return sums, nil
}

// OpenImage opens a bundled image archive for import, decompressed.
func OpenImage(file string) (io.ReadCloser, error) {
	compressed, err := assets.Open(path.Join("assets/images", file+".zst"))
	if err != nil {
		return nil, err
	}
	decoder, err := zstd.NewReader(compressed, zstd.WithDecoderConcurrency(1))
	if err != nil {
		compressed.Close()
		return nil, err
	}
	return &decompressed{Decoder: decoder, compressed: compressed}, nil
}

// decompressed closes both the decoder and the embedded file below it.
type decompressed struct {
	*zstd.Decoder
	compressed fs.File
}

func (d *decompressed) Close() error {
	d.Decoder.Close()
	return d.compressed.Close()
}

// References reads the names the archive gives its image (the RepoTags of
// its manifest.json). Only `images list` needs them; a start does not.
func (i Image) References() ([]string, error) {
	file := i.File
	archive, err := OpenImage(file)
	if err != nil {
		return nil, err
	}
	defer archive.Close()
	reader := tar.NewReader(archive)
	for {
		header, err := reader.Next()
		if err != nil {
			return nil, fmt.Errorf("%s has no manifest.json: %w", file, err)
		}
		if header.Name != "manifest.json" {
			continue
		}
		var manifest []struct{ RepoTags []string }
		if err := json.NewDecoder(reader).Decode(&manifest); err != nil {
			return nil, fmt.Errorf("%s: manifest.json: %w", file, err)
		}
		var refs []string
		for _, entry := range manifest {
			refs = append(refs, entry.RepoTags...)
		}
		return refs, nil
	}
}
