// Package datastore runs the store the API server keeps its state in,
// behind one interface: kine on SQLite, PostgreSQL or MySQL, embedded etcd,
// or an external etcd.
package datastore

import (
	"fmt"
	"net"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/pki"
)

// Datastore is a component that serves the etcd v3 API.
type Datastore interface {
	component.Component
	// Client is how the API server reaches the datastore; valid after Start.
	Client() Client
}

// Client is what the API server's --etcd-* flags say.
type Client struct {
	Endpoints []string
	TLS       config.StorageTLS
}

// Options are what a datastore needs beyond the storage config.
type Options struct {
	Storage config.StorageSpec
	Layout  datadir.Layout
	// Member and IP name this server's embedded etcd member and its address.
	Member string
	IP     net.IP
	// EtcdPKI are the embedded etcd's certificates.
	EtcdPKI pki.EtcdFiles
	// Join are client URLs of the cluster a new embedded member joins.
	Join []string
	// ClusterReset makes an embedded etcd a one-member cluster keeping its data.
	ClusterReset bool
}

// New returns the datastore the storage config asks for.
func New(opts Options) (Datastore, error) {
	storage := opts.Storage
	switch storage.Type {
	case config.StorageSQLite:
		return newSQLite(storage.DataSource, opts.Layout), nil
	case config.StoragePostgres, config.StorageMySQL:
		return newSQL(storage, opts.Layout), nil
	case config.StorageEtcd:
		if !storage.Embedded() {
			return &External{Endpoints: storage.Etcd.Endpoints, TLS: storage.TLS}, nil
		}
		return &Etcd{
			Member: opts.Member, Dir: opts.Layout.EtcdDir(), IP: opts.IP,
			ClientPort: storage.Etcd.ClientPort, PeerPort: storage.Etcd.PeerPort,
			PKI: opts.EtcdPKI, URLFile: opts.Layout.EtcdURLFile(), RestoreFile: opts.Layout.EtcdRestoreFile(),
			Join: opts.Join, ForceNewCluster: opts.ClusterReset,
		}, nil
	default:
		return nil, fmt.Errorf("spec.storage.type: unsupported datastore %q", storage.Type)
	}
}
