package backup

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/klog/v2"
	_ "modernc.org/sqlite" // registers the "sqlite" driver kine uses

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/datastore"
	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/version"
)

// Request says what to back up and where.
type Request struct {
	Layout  datadir.Layout
	Storage config.StorageSpec
	// ConfigFile is included when it exists.
	ConfigFile string
	// SaveDir receives the archive; Prefix starts its name.
	SaveDir string
	Prefix  string
}

// Create writes one archive into req.SaveDir while the server runs and
// returns its path. The datastore part is a consistent snapshot: SQLite's
// VACUUM INTO (one read transaction) or etcd's own snapshot.
func Create(ctx context.Context, req Request) (string, error) {
	began := time.Now()
	if err := os.MkdirAll(req.SaveDir, 0o700); err != nil {
		return "", fmt.Errorf("create %s: %w", req.SaveDir, err)
	}
	staging, err := os.MkdirTemp(req.SaveDir, ".backup-")
	if err != nil {
		return "", fmt.Errorf("staging dir: %w", err)
	}
	defer os.RemoveAll(staging)
	w := &writer{}
	switch {
	case req.Storage.Type == config.StorageSQLite:
		snapshot := filepath.Join(staging, "state.db")
		if err := snapshotSQLite(ctx, datastore.SQLiteFile(req.Storage, req.Layout), snapshot); err != nil {
			return "", err
		}
		if err := w.add(sqliteEntry, snapshot); err != nil {
			return "", err
		}
	case req.Storage.Embedded():
		snapshot := filepath.Join(staging, "etcd.snapshot")
		if err := snapshotEtcd(ctx, req.Layout, snapshot); err != nil {
			return "", err
		}
		if err := w.add(etcdEntry, snapshot); err != nil {
			return "", err
		}
	default:
		klog.InfoS("The datastore is external: back it up with its own tools; this archive holds the keys, config and manifests", "type", req.Storage.Type)
	}
	klog.InfoS("Backup: datastore snapshot taken", "type", req.Storage.Type, "took", time.Since(began).Round(time.Millisecond))
	for _, name := range join.SharedKeys {
		if err := w.add(pkiPrefix+name, filepath.Join(req.Layout.PKIDir(), name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	if req.ConfigFile != "" {
		if err := w.add(configEntry, req.ConfigFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
	}
	if err := w.addTree(manifestsPref, req.Layout.ManifestsDir()); err != nil {
		return "", fmt.Errorf("manifests: %w", err)
	}
	now := time.Now().UTC()
	dest := filepath.Join(req.SaveDir, fmt.Sprintf("%s-%s.tar.gz", req.Prefix, now.Format("20060102T150405.000Z")))
	manifest := Manifest{Format: formatVersion, Monokube: version.Version, Kubernetes: version.Kubernetes(), Storage: storageKind(req.Storage), Created: now}
	if err := w.write(dest, manifest); err != nil {
		return "", err
	}
	klog.InfoS("Backup written", "path", dest, "files", len(w.entries), "took", time.Since(began).Round(time.Millisecond))
	return dest, nil
}

// storageKind is what the archive's datastore part is.
func storageKind(storage config.StorageSpec) string {
	switch {
	case storage.Type == config.StorageSQLite:
		return config.StorageSQLite
	case storage.Embedded():
		return config.StorageEtcd
	}
	return "external-" + storage.Type
}

// snapshotSQLite copies the database in one read transaction; kine keeps
// writing meanwhile (WAL), and the copy is a consistent database.
func snapshotSQLite(ctx context.Context, dbFile, dest string) error {
	if _, err := os.Stat(dbFile); err != nil {
		return fmt.Errorf("datastore: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+dbFile+"?_pragma=busy_timeout(30000)")
	if err != nil {
		return fmt.Errorf("open %s: %w", dbFile, err)
	}
	defer db.Close()
	quoted := "'" + strings.ReplaceAll(dest, "'", "''") + "'"
	if _, err := db.ExecContext(ctx, "VACUUM INTO "+quoted); err != nil {
		return fmt.Errorf("snapshot %s: %w", dbFile, err)
	}
	return nil
}

// snapshotEtcd streams the member's snapshot (it ends with etcd's own
// checksum, which restore verifies).
func snapshotEtcd(ctx context.Context, layout datadir.Layout, dest string) error {
	client, err := datastore.LocalEtcd(layout)
	if err != nil {
		return err
	}
	defer client.Close()
	stream, err := client.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("etcd snapshot: %w", err)
	}
	defer stream.Close()
	out, err := os.OpenFile(dest, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, stream); err != nil {
		out.Close()
		return fmt.Errorf("etcd snapshot: %w", err)
	}
	return out.Close()
}
