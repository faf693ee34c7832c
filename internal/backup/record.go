package backup

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/datastore"
)

// ServerRecord is what a server start writes into its data dir so that a
// backup given only --data-dir snapshots the datastore the server really
// uses: a server started with --config F on a non-default datastore made
// `monokube backup` without the same --config look for state.db that was
// never there. The SQLite file is kept, an external datastore's DSN is
// not (it may hold a password, and backup does not snapshot it).
type ServerRecord struct {
	// ConfigFile is the absolute path of the config the server loaded; ""
	// when it ran on the defaults.
	ConfigFile string `json:"configFile,omitempty"`
	// Storage is the kind of datastore (storageKind: sqlite, etcd for the
	// embedded one, external-<type>), and for SQLite its file.
	Storage    string `json:"storage"`
	SQLiteFile string `json:"sqliteFile,omitempty"`
}

// RecordServer writes the record at each server start.
func RecordServer(layout datadir.Layout, configFile string, storage config.StorageSpec) error {
	record := ServerRecord{Storage: storageKind(storage)}
	if configFile != "" {
		if _, err := os.Stat(configFile); err == nil {
			abs, err := filepath.Abs(configFile)
			if err != nil {
				return fmt.Errorf("config path: %w", err)
			}
			record.ConfigFile = abs
		}
	}
	if storage.Type == config.StorageSQLite {
		file, err := filepath.Abs(datastore.SQLiteFile(storage, layout))
		if err != nil {
			return fmt.Errorf("sqlite path: %w", err)
		}
		record.SQLiteFile = file
	}
	raw, err := json.MarshalIndent(record, "", "  ")
	if err != nil {
		return err
	}
	tmp := layout.ServerRecordFile() + ".tmp"
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("record the server's config and datastore: %w", err)
	}
	return os.Rename(tmp, layout.ServerRecordFile())
}

// RecordedServer reads the record; ok is false when no server with a
// record has run on layout (a data dir from before records, or a worker's).
func RecordedServer(layout datadir.Layout) (record ServerRecord, ok bool, err error) {
	raw, err := os.ReadFile(layout.ServerRecordFile())
	if errors.Is(err, os.ErrNotExist) {
		return ServerRecord{}, false, nil
	}
	if err != nil {
		return ServerRecord{}, false, err
	}
	if err := json.Unmarshal(raw, &record); err != nil {
		return ServerRecord{}, false, fmt.Errorf("%s: %w", layout.ServerRecordFile(), err)
	}
	return record, true, nil
}

// StorageSpec is the datastore the record names, as far as a backup needs
// it: which kind, and the SQLite file.
func (r ServerRecord) StorageSpec() config.StorageSpec {
	switch {
	case r.Storage == config.StorageSQLite:
		return config.StorageSpec{Type: config.StorageSQLite, DataSource: r.SQLiteFile}
	case r.Storage == config.StorageEtcd:
		return config.StorageSpec{Type: config.StorageEtcd}
	}
	// An external datastore: a backup takes keys, config and manifests only.
	spec := config.StorageSpec{Type: strings.TrimPrefix(r.Storage, "external-")}
	if spec.Type == config.StorageEtcd {
		spec.Etcd.Endpoints = []string{"(external; not recorded)"}
	}
	return spec
}
