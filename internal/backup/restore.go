package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/version"
)

// Restore unpacks an archive into an empty (or absent) data dir. Empty
// means nothing but the launcher's payload (as root the launcher unpacks
// the program into <data-dir>/payload before restore runs, so a brand-new
// data dir always has it) and image archives in images/. The archive is checked whole in a staging dir
// inside the data dir (same file system, so the moves are renames, and a
// data dir that is a mount point works); a refused or damaged archive
// leaves nothing behind. The moves into place happen under a marker that
// a start refuses, so a restore cut short is never taken for a cluster.
// The datastore comes back on the next `monokube server` start: a SQLite
// file in place, or an etcd snapshot the server turns into its member.
func Restore(archive string, layout datadir.Layout) (Manifest, error) {
	if err := layout.CheckNoPartialRestore(); err != nil {
		return Manifest{}, err
	}
	if err := removeStaging(layout.Dir); err != nil {
		return Manifest{}, err
	}
	if names, err := stateToReplace(layout); err != nil {
		return Manifest{}, err
	} else if len(names) > 0 {
		return Manifest{}, fmt.Errorf("%s is not empty (it holds %s): restore only into an empty data dir (nothing was changed)",
			layout.Dir, strings.Join(names, ", "))
	}
	if err := os.MkdirAll(layout.Dir, 0o700); err != nil {
		return Manifest{}, fmt.Errorf("create data dir: %w", err)
	}
	staging, err := os.MkdirTemp(layout.Dir, stagingPrefix)
	if err != nil {
		return Manifest{}, fmt.Errorf("staging dir: %w", err)
	}
	defer os.RemoveAll(staging)
	unpacked := filepath.Join(staging, "archive")
	if err := os.Mkdir(unpacked, 0o700); err != nil {
		return Manifest{}, err
	}
	klog.InfoS("Restore: reading and checking the archive", "archive", archive)
	manifest, err := extract(archive, unpacked)
	if err != nil {
		return manifest, err
	}
	if err := compatible(manifest); err != nil {
		return manifest, fmt.Errorf("%s: %w", archive, err)
	}
	moves := map[string]string{
		filepath.Join(unpacked, "pki"):       layout.PKIDir(),
		filepath.Join(unpacked, "manifests"): layout.ManifestsDir(),
		filepath.Join(unpacked, configEntry): layout.RestoredConfigFile(),
	}
	switch manifest.Storage {
	case config.StorageSQLite:
		moves[filepath.Join(unpacked, sqliteEntry)] = layout.DBFile()
	case config.StorageEtcd:
		moves[filepath.Join(unpacked, etcdEntry)] = layout.EtcdRestoreFile()
	}
	klog.InfoS("Restore: the archive is whole; moving its files into the data dir", "dataDir", layout.Dir)
	if err := os.WriteFile(layout.RestoreMarker(), []byte(archive+"\n"), 0o600); err != nil {
		return manifest, fmt.Errorf("restore marker: %w", err)
	}
	synced := map[string]bool{layout.Dir: true}
	for from, to := range moves {
		if _, err := os.Stat(from); errors.Is(err, os.ErrNotExist) {
			continue
		}
		synced[filepath.Dir(to)] = true
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return manifest, err
		}
		if err := os.Rename(from, to); err != nil {
			return manifest, fmt.Errorf("restore %s: %w", filepath.Base(to), err)
		}
	}
	if err := os.Chmod(layout.Dir, 0o700); err != nil {
		return manifest, err
	}
	for dir := range synced {
		if err := syncDir(dir); err != nil {
			return manifest, err
		}
	}
	if err := os.Remove(layout.RestoreMarker()); err != nil {
		return manifest, fmt.Errorf("restore marker: %w", err)
	}
	klog.InfoS("Restore done", "dataDir", layout.Dir, "storage", manifest.Storage, "created", manifest.Created, "kubernetes", manifest.Kubernetes)
	return manifest, nil
}

// stateToReplace is what in the data dir a restore would have to replace:
// everything but the launcher's payload and the image archives a user put
// in images/ for an air-gapped start (no archive carries them).
func stateToReplace(layout datadir.Layout) ([]string, error) {
	names, err := layout.StateEntries()
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(names, func(name string) bool { return name == filepath.Base(layout.ImagesDir()) }), nil
}

// stagingPrefix names restore's staging dirs inside the data dir.
const stagingPrefix = ".restore-staging-"

// removeStaging removes what a restore cut short before its moves left
// (a partial unpack of the archive, never data of the cluster's).
func removeStaging(dir string) error {
	leftovers, _ := filepath.Glob(filepath.Join(dir, stagingPrefix+"*"))
	for _, leftover := range leftovers {
		if err := os.RemoveAll(leftover); err != nil {
			return fmt.Errorf("remove an earlier restore's staging dir: %w", err)
		}
	}
	return nil
}

// syncDir makes the renames into dir durable before the marker goes.
func syncDir(dir string) error {
	file, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer file.Close()
	if err := file.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}

// compatible refuses archives this monokube cannot restore faithfully.
func compatible(m Manifest) error {
	if m.Format != formatVersion {
		return fmt.Errorf("backup format %d, this monokube reads format %d (it was made by monokube %s)", m.Format, formatVersion, m.Monokube)
	}
	if minor(m.Kubernetes) != minor(version.Kubernetes()) {
		return fmt.Errorf("made with Kubernetes %s (monokube %s); this monokube runs %s: restore with the version that made it, then upgrade",
			m.Kubernetes, m.Monokube, version.Kubernetes())
	}
	if strings.HasPrefix(m.Storage, "external-") {
		klog.InfoS("The backup's datastore was external: it holds keys, config and manifests; restore the database with its own tools", "storage", m.Storage)
	}
	return nil
}

// minor is "v1.37" of "v1.37.1".
func minor(v string) string {
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v
	}
	return parts[0] + "." + parts[1]
}

// StageEtcdSnapshot takes an archive's etcd snapshot for
// --cluster-reset --restore-path: it is checked whole and placed where the
// next start of the member restores it.
func StageEtcdSnapshot(archive string, layout datadir.Layout) error {
	staging, err := os.MkdirTemp(filepath.Dir(layout.EtcdRestoreFile()), ".restore-")
	if err != nil {
		return fmt.Errorf("staging dir: %w", err)
	}
	defer os.RemoveAll(staging)
	manifest, err := extract(archive, staging)
	if err != nil {
		return err
	}
	if err := compatible(manifest); err != nil {
		return fmt.Errorf("%s: %w", archive, err)
	}
	if manifest.Storage != config.StorageEtcd {
		return fmt.Errorf("%s holds a %s datastore, not an etcd snapshot", archive, manifest.Storage)
	}
	return os.Rename(filepath.Join(staging, etcdEntry), layout.EtcdRestoreFile())
}
