// Package bundle holds the executables and image archives our build makes
// from pinned upstream modules (runc, the shim, CNI plugins, crictl, the
// network tools, the system images) so nothing is taken from the host or
// downloaded at run time. They lie beside the monokube program, in the
// directory the launcher unpacked (package payload):
//
//	monokube          this program
//	digest            content hash of bin/ and nettools/, written by the build
//	bin/              executables
//	nettools/         the network tools' tree (package nettools)
//	images/*.tar      image archives, images.sha256 their checksums
//
// A node copies (hard-links) the executables into its data dir, where it
// also records per-node state such as the iptables backend.
package bundle

import (
	"archive/tar"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/nettools"
	"github.com/monokube/monokube/internal/payload"
)

// root is the directory of the running program, where the launcher
// unpacked the bundle beside it.
func root() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("find this program: %w", err)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	return filepath.Dir(self), nil
}

// path is name below the bundle's root, or an error saying how to get one.
func path(name ...string) (string, error) {
	dir, err := root()
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(dir, "digest")); err != nil {
		return "", fmt.Errorf("no bundle beside this program in %s: run the monokube the build makes (bin/monokube), which unpacks it: %w", dir, err)
	}
	return filepath.Join(append([]string{dir}, name...)...), nil
}

// digest is the content hash of the executables, written by the build.
func digest() (string, error) {
	file, err := path("digest")
	if err != nil {
		return "", err
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(raw)), nil
}

// Executables lists the bundled executables by name.
func Executables() ([]string, error) {
	dir, err := path("bin")
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("bundled executables: %w", err)
	}
	var names []string
	for _, entry := range entries {
		names = append(names, entry.Name())
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

// Extract puts the executables and the network tools into
// <binRoot>/<content hash>/ and returns that directory. The hash makes a
// new monokube version use its own helpers, never an older copy; an
// existing complete directory is reused, and a new one replaces those of
// earlier builds that no running process uses. Files are hard links to the
// bundle's where the file system allows, copies elsewhere.
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
	bin, err := path("bin")
	if err != nil {
		return "", err
	}
	tools, err := path(nettools.Dir)
	if err != nil {
		return "", err
	}
	if err := linkTree(bin, tmp); err != nil {
		return "", fmt.Errorf("unpack bundled executables: %w", err)
	}
	if err := linkTree(tools, filepath.Join(tmp, nettools.Dir)); err != nil {
		return "", fmt.Errorf("unpack bundled network tools: %w", err)
	}
	if err := nettools.Link(tmp); err != nil {
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
	// Earlier builds' copies are hard links that outlive their payload's
	// removal: about 60 MB each once it is gone.
	removed, err := payload.RemoveUnused(binRoot, dir)
	for _, old := range removed {
		klog.InfoS("Removed the executables of an earlier build", "dir", old)
	}
	if err != nil {
		klog.ErrorS(err, "Could not remove the executables of an earlier build; continuing")
	}
	return dir, nil
}

// linkTree recreates the tree below from at to, hard-linking each file or
// copying it where a link is refused (another file system).
func linkTree(from, to string) error {
	return filepath.WalkDir(from, func(source string, entry fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, source)
		if err != nil {
			return err
		}
		target := filepath.Join(to, rel)
		if entry.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if err := os.Link(source, target); err == nil {
			return nil
		}
		return CopyFile(source, target)
	})
}

// CopyFile copies source to target with source's permissions.
func CopyFile(source, target string) error {
	in, err := os.Open(source)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", source, err)
	}
	return out.Close()
}

// HasNetTools reports whether this build carries the network tools.
func HasNetTools() bool {
	dir, err := path(nettools.Dir)
	if err != nil {
		return false
	}
	_, err = os.Stat(dir)
	return err == nil
}

// Image is a bundled image archive.
type Image struct {
	// File is the archive's name in the bundle ("pause.tar").
	File string
	// Size is the archive's size.
	Size int64
	// SHA256 is the archive's, computed by the build (images.sha256).
	SHA256 string
}

// Images lists the bundled image archives.
func Images() ([]Image, error) {
	dir, err := path("images")
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("bundled images: %w", err)
	}
	sums, err := imageSums(dir)
	if err != nil {
		return nil, err
	}
	var images []Image
	for _, entry := range entries {
		if !strings.HasSuffix(entry.Name(), ".tar") {
			continue
		}
		info, err := entry.Info()
		if err != nil {
			return nil, err
		}
		images = append(images, Image{File: entry.Name(), Size: info.Size(), SHA256: sums[entry.Name()]})
	}
	slices.SortFunc(images, func(a, b Image) int { return strings.Compare(a.File, b.File) })
	return images, nil
}

// imageSums reads the build's `sha256sum` of the image archives.
func imageSums(dir string) (map[string]string, error) {
	raw, err := os.ReadFile(filepath.Join(dir, "images.sha256"))
	if err != nil {
		return nil, fmt.Errorf("bundled image checksums: %w", err)
	}
	sums := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		if sum, file, ok := strings.Cut(line, "  "); ok {
			sums[file] = sum
		}
	}
	return sums, nil
}

// OpenImage opens a bundled image archive for import.
func OpenImage(file string) (io.ReadCloser, error) {
	archive, err := path("images", file)
	if err != nil {
		return nil, err
	}
	return os.Open(archive)
}

// References reads the names the archive gives its image (the RepoTags of
// its manifest.json): `images list` shows them, and a start knows by them
// which pulls wait for a bundled import. The tar reader seeks past the
// layers, so this reads a few headers only.
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

// Platform is the image's OS and architecture ("linux/arm64") as its
// config says: `images list` shows it, so a binary built for one machine
// is seen to carry images for that machine.
func (i Image) Platform() (string, error) {
	archive, err := OpenImage(i.File)
	if err != nil {
		return "", err
	}
	defer archive.Close()
	// The config is small and may come before or after manifest.json.
	small := map[string][]byte{}
	var manifest []struct{ Config string }
	reader := tar.NewReader(archive)
	for {
		header, err := reader.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", i.File, err)
		}
		if header.Size > 1<<16 {
			continue
		}
		data, err := io.ReadAll(reader)
		if err != nil {
			return "", fmt.Errorf("%s: %s: %w", i.File, header.Name, err)
		}
		small[header.Name] = data
	}
	if err := json.Unmarshal(small["manifest.json"], &manifest); err != nil || len(manifest) == 0 {
		return "", fmt.Errorf("%s has no readable manifest.json", i.File)
	}
	var config struct{ OS, Architecture string }
	if err := json.Unmarshal(small[manifest[0].Config], &config); err != nil {
		return "", fmt.Errorf("%s: config %s: %w", i.File, manifest[0].Config, err)
	}
	return config.OS + "/" + config.Architecture, nil
}

// Manifests are the bundled manifests (manifests/*.yaml: CRDs the build
// copies from pinned modules) by file name.
func Manifests() (map[string][]byte, error) {
	dir, err := path("manifests")
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("bundled manifests: %w", err)
	}
	out := map[string][]byte{}
	for _, entry := range entries {
		if !strings.HasSuffix(entry.Name(), ".yaml") {
			continue
		}
		content, err := os.ReadFile(filepath.Join(dir, entry.Name()))
		if err != nil {
			return nil, fmt.Errorf("bundled manifest: %w", err)
		}
		out[entry.Name()] = content
	}
	return out, nil
}
