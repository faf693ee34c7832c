package config

import (
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/robfig/cron/v3"
)

// storage checks what can be checked without reaching the datastore; an
// unreachable database or a wrong password is reported at start, by the
// datastore, naming spec.storage.dataSource.
func (v *validator) storage(storage *StorageSpec) {
	v.oneOf("spec.storage.type", storage.Type, StorageTypes)
	switch storage.Type {
	case StoragePostgres:
		v.dataSource(storage.DataSource, "postgres://user:password@host:5432/kubernetes", "postgres", "postgresql")
	case StorageMySQL:
		v.dataSource(storage.DataSource, "mysql://user:password@tcp(host:3306)/kubernetes", "mysql")
	case StorageEtcd:
		if storage.DataSource != "" {
			v.add("spec.storage.dataSource", "is not used with etcd; set spec.storage.etcd.endpoints for an external etcd")
		}
		for i, endpoint := range storage.Etcd.Endpoints {
			if u, err := url.Parse(endpoint); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				v.add(fmt.Sprintf("spec.storage.etcd.endpoints[%d]", i), "must be an http(s) URL such as https://10.0.0.5:2379, got %q", endpoint)
			}
		}
	}
	if storage.TLS.Set() && (storage.Type == StorageSQLite || storage.Embedded()) {
		v.add("spec.storage.tls", "is only for postgres, mysql or an external etcd (spec.storage.etcd.endpoints)")
	}
	if (storage.TLS.CertFile == "") != (storage.TLS.KeyFile == "") {
		v.add("spec.storage.tls", "certFile and keyFile go together")
	}
	for path, file := range map[string]string{
		"spec.storage.tls.caFile": storage.TLS.CAFile, "spec.storage.tls.certFile": storage.TLS.CertFile, "spec.storage.tls.keyFile": storage.TLS.KeyFile,
	} {
		if file != "" && !filepath.IsAbs(file) {
			v.add(path, "must be an absolute path, got %q", file)
		}
	}
	v.port("spec.storage.etcd.clientPort", storage.Etcd.ClientPort)
	v.port("spec.storage.etcd.peerPort", storage.Etcd.PeerPort)
	if storage.Etcd.ClientPort == storage.Etcd.PeerPort {
		v.add("spec.storage.etcd.peerPort", "must differ from spec.storage.etcd.clientPort (%d)", storage.Etcd.ClientPort)
	}
	if schedule := storage.Snapshots.Schedule; schedule != "" {
		if _, err := cron.ParseStandard(schedule); err != nil {
			v.add("spec.storage.snapshots.schedule", "is not a cron expression (\"0 */12 * * *\"): %v", err)
		}
	}
	if storage.Snapshots.Retention < 1 {
		v.add("spec.storage.snapshots.retention", "must keep at least 1 snapshot, got %d", storage.Snapshots.Retention)
	}
}

// dataSource checks a database URL's form; the password is never echoed.
func (v *validator) dataSource(dsn, example string, schemes ...string) {
	const path = "spec.storage.dataSource"
	if dsn == "" {
		// A missing field has no line of its own: point at the type that needs it.
		v.errs = append(v.errs, FieldError{Path: path, Line: v.lines["spec.storage.type"],
			Message: fmt.Sprintf("is required for this datastore, e.g. %s", example)})
		return
	}
	scheme, _, found := strings.Cut(dsn, "://")
	if !found || !slices.Contains(schemes, scheme) {
		v.add(path, "must be a URL such as %s", example)
	}
}

func (v *validator) port(path string, port int) {
	if port < 1 || port > 65535 {
		v.add(path, "must be between 1 and 65535, got %d", port)
	}
}
