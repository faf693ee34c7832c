// Package datastore runs the store the API server keeps its state in,
// behind one interface: today kine on SQLite, later embedded etcd and
// external databases.
package datastore

import (
	"fmt"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
)

// Datastore is a component that serves the etcd v3 API.
type Datastore interface {
	component.Component
	// Endpoints are the etcd URLs for the API server's --etcd-servers; valid after Start.
	Endpoints() []string
}

// New returns the datastore the storage config asks for.
func New(storage config.StorageSpec, layout datadir.Layout) (Datastore, error) {
	switch storage.Type {
	case config.StorageSQLite:
		return newSQLite(storage.DataSource, layout), nil
	default:
		return nil, fmt.Errorf("spec.storage.type: unsupported datastore %q", storage.Type)
	}
}
