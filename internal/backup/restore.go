package backup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/version"
)

// Restore unpacks an archive into an empty (or absent) data dir. The
// archive is checked whole before the data dir appears: a refused or
// damaged archive leaves nothing behind. The datastore comes back on the
// next `monokube server` start: a SQLite file in place, or an etcd
// snapshot the server turns into its member.
func Restore(archive string, layout datadir.Layout) (Manifest, error) {
	if entries, err := os.ReadDir(layout.Dir); err == nil && len(entries) > 0 {
		return Manifest{}, fmt.Errorf("%s is not empty: restore only into an empty data dir (nothing was changed)", layout.Dir)
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Manifest{}, err
	}
	parent := filepath.Dir(layout.Dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return Manifest{}, err
	}
	staging, err := os.MkdirTemp(parent, "."+filepath.Base(layout.Dir)+".restore-")
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
	target, err := datadir.New(filepath.Join(staging, "data"))
	if err != nil {
		return manifest, err
	}
	moves := map[string]string{
		filepath.Join(unpacked, "pki"):       target.PKIDir(),
		filepath.Join(unpacked, "manifests"): target.ManifestsDir(),
		filepath.Join(unpacked, configEntry): target.RestoredConfigFile(),
	}
	switch manifest.Storage {
	case config.StorageSQLite:
		moves[filepath.Join(unpacked, sqliteEntry)] = target.DBFile()
	case config.StorageEtcd:
		moves[filepath.Join(unpacked, etcdEntry)] = target.EtcdRestoreFile()
	}
	for from, to := range moves {
		if _, err := os.Stat(from); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return manifest, err
		}
		if err := os.Rename(from, to); err != nil {
			return manifest, fmt.Errorf("restore %s: %w", filepath.Base(to), err)
		}
	}
	if err := os.Chmod(target.Dir, 0o700); err != nil {
		return manifest, err
	}
	// An existing empty data dir is replaced by the complete one.
	if err := os.Remove(layout.Dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return manifest, err
	}
	if err := os.Rename(target.Dir, layout.Dir); err != nil {
		return manifest, fmt.Errorf("move the restored data into %s: %w", layout.Dir, err)
	}
	klog.InfoS("Restore done", "dataDir", layout.Dir, "storage", manifest.Storage, "created", manifest.Created, "kubernetes", manifest.Kubernetes)
	return manifest, nil
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
