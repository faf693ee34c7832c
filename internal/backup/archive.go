// Package backup writes and restores one-file backups of a server: a
// consistent datastore snapshot, the cluster's shared keys, the config and
// the manifests directory.
package backup

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"
)

// formatVersion changes whenever an older monokube could not restore an
// archive correctly.
const formatVersion = 1

// manifestName is the archive's first entry: what it holds and checksums.
const manifestName = "monokube-backup.json"

// Archive entries.
const (
	sqliteEntry   = "datastore/state.db"
	etcdEntry     = "datastore/etcd.snapshot"
	configEntry   = "config/monokube.yaml"
	pkiPrefix     = "pki/"
	manifestsPref = "manifests/"
)

// Manifest describes an archive.
type Manifest struct {
	Format     int       `json:"format"`
	Monokube   string    `json:"monokube"`
	Kubernetes string    `json:"kubernetes"`
	Storage    string    `json:"storage"`
	Created    time.Time `json:"created"`
	// Files maps each entry to the SHA-256 of its content.
	Files map[string]string `json:"files"`
}

// writer builds an archive: entries are staged as files, then written
// behind the manifest so a reader can check everything it extracts.
type writer struct {
	entries []entry
}

type entry struct {
	name string
	path string // file on disk to copy
	mode os.FileMode
}

func (w *writer) add(name, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	w.entries = append(w.entries, entry{name: name, path: path, mode: info.Mode().Perm()})
	return nil
}

// addTree adds every regular file below dir under prefix.
func (w *writer) addTree(prefix, dir string) error {
	return filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		return w.add(prefix+filepath.ToSlash(rel), p)
	})
}

// write produces the archive at dest (via a temporary file, so a failure
// or a crash never leaves a half archive under the final name).
func (w *writer) write(dest string, manifest Manifest) error {
	manifest.Files = map[string]string{}
	for _, e := range w.entries {
		sum, err := fileSum(e.path)
		if err != nil {
			return err
		}
		manifest.Files[e.name] = sum
	}
	tmp := dest + ".partial"
	out, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer os.Remove(tmp)
	zw := gzip.NewWriter(out)
	tw := tar.NewWriter(zw)
	raw, err := json.MarshalIndent(manifest, "", "  ")
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: manifestName, Mode: 0o600, Size: int64(len(raw)), ModTime: manifest.Created}); err != nil {
		return err
	}
	if _, err := tw.Write(raw); err != nil {
		return err
	}
	for _, e := range w.entries {
		if err := copyEntry(tw, e, manifest.Created); err != nil {
			return fmt.Errorf("archive %s: %w", e.name, err)
		}
	}
	if err := errors.Join(tw.Close(), zw.Close()); err != nil {
		out.Close()
		return fmt.Errorf("write archive: %w", err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("write archive: %w", err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("write archive: %w", err)
	}
	return os.Rename(tmp, dest)
}

func copyEntry(tw *tar.Writer, e entry, modTime time.Time) error {
	file, err := os.Open(e.path)
	if err != nil {
		return err
	}
	defer file.Close()
	info, err := file.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: int64(e.mode), Size: info.Size(), ModTime: modTime}); err != nil {
		return err
	}
	_, err = io.Copy(tw, file)
	return err
}

func fileSum(p string) (string, error) {
	file, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer file.Close()
	hash := sha256.New()
	if _, err := io.Copy(hash, file); err != nil {
		return "", err
	}
	return hex.EncodeToString(hash.Sum(nil)), nil
}

// extract unpacks archive into dir (which must exist and be empty) and
// checks every entry against the manifest: a truncated, garbled or
// tampered archive fails here, before anything is used.
func extract(archive, dir string) (Manifest, error) {
	var manifest Manifest
	file, err := os.Open(archive)
	if err != nil {
		return manifest, err
	}
	defer file.Close()
	zr, err := gzip.NewReader(file)
	if err != nil {
		return manifest, fmt.Errorf("%s is not a monokube backup (not gzip): %w", archive, err)
	}
	tr := tar.NewReader(zr)
	header, err := tr.Next()
	if err != nil || header.Name != manifestName {
		return manifest, fmt.Errorf("%s is not a monokube backup (no %s first)", archive, manifestName)
	}
	if err := json.NewDecoder(io.LimitReader(tr, 1<<20)).Decode(&manifest); err != nil {
		return manifest, fmt.Errorf("%s: unreadable manifest: %w", archive, err)
	}
	seen := map[string]bool{}
	for {
		header, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return manifest, fmt.Errorf("%s is truncated or garbled: %w", archive, err)
		}
		name := path.Clean(header.Name)
		want, listed := manifest.Files[name]
		if !listed || strings.HasPrefix(name, "../") || path.IsAbs(name) || header.Typeflag != tar.TypeReg {
			return manifest, fmt.Errorf("%s: unexpected entry %q", archive, header.Name)
		}
		target := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(target), 0o700); err != nil {
			return manifest, err
		}
		out, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, os.FileMode(header.Mode).Perm()|0o600)
		if err != nil {
			return manifest, err
		}
		hash := sha256.New()
		_, err = io.Copy(io.MultiWriter(out, hash), tr)
		if err = errors.Join(err, out.Close()); err != nil {
			return manifest, fmt.Errorf("%s is truncated or garbled: %w", archive, err)
		}
		if got := hex.EncodeToString(hash.Sum(nil)); got != want {
			return manifest, fmt.Errorf("%s: %s does not match its checksum (the archive is damaged)", archive, name)
		}
		seen[name] = true
	}
	for name := range manifest.Files {
		if !seen[name] {
			return manifest, fmt.Errorf("%s is truncated: %s is missing", archive, name)
		}
	}
	return manifest, nil
}
