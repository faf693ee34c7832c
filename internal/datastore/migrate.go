package datastore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/datadir"
)

// skipOnMigration are keys not worth carrying over: events expire through
// etcd leases that kine's rows do not have, and the API server rewrites
// its own endpoint leases at once.
var skipOnMigration = []string{"/registry/events/", "/registry/masterleases/"}

// Migration copies a SQLite datastore into a new embedded etcd, so a
// single server can grow into an HA cluster without rebuilding it (as k3s
// does). It runs after etcd is ready and before the API server starts.
// The SQLite file is renamed only once every key is in etcd, so a crash
// midway repeats the copy; keys already copied are left as they are.
type Migration struct {
	Layout datadir.Layout
	DBFile string
	// To is the etcd the keys go to.
	To func() Client
}

// NeedsMigration reports whether dbFile holds a SQLite datastore that was
// not migrated yet.
func NeedsMigration(dbFile string) bool {
	info, err := os.Stat(dbFile)
	return err == nil && info.Size() > 0
}

func (m *Migration) Name() string               { return "sqlite-migration" }
func (m *Migration) Init(context.Context) error { return nil }

func (m *Migration) Start(ctx context.Context) error {
	began := time.Now()
	source := &Kine{Type: "sqlite", DSN: "sqlite://" + m.DBFile + "?" + sqliteParams, DBFile: m.DBFile,
		Socket: filepath.Join(filepath.Dir(m.Layout.KineSocket()), "migrate.sock")}
	if err := source.Init(ctx); err != nil {
		return err
	}
	if err := source.Start(ctx); err != nil {
		return fmt.Errorf("open the SQLite datastore to migrate: %w", err)
	}
	copied, skipped, err := m.copy(ctx, source.Client())
	if err := errors.Join(err, source.Stop()); err != nil {
		return fmt.Errorf("migrate SQLite to etcd: %w", err)
	}
	done := m.DBFile + ".migrated-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(m.DBFile, done); err != nil {
		return fmt.Errorf("migrate SQLite to etcd: set the old database aside: %w", err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		_ = os.Remove(m.DBFile + suffix)
	}
	klog.InfoS("Migrated the SQLite datastore into etcd", "keys", copied, "skipped", skipped, "oldDatabase", done, "took", time.Since(began).Round(time.Millisecond))
	return nil
}

func (m *Migration) copy(ctx context.Context, from Client) (copied, skipped int, err error) {
	src, err := NewEtcdClient(from.Endpoints, from.TLS)
	if err != nil {
		return 0, 0, err
	}
	defer src.Close()
	to := m.To()
	dst, err := NewEtcdClient(to.Endpoints, to.TLS)
	if err != nil {
		return 0, 0, err
	}
	defer dst.Close()
	key := "/registry/"
	end := clientv3.GetPrefixRangeEnd(key)
	for {
		page, err := src.Get(ctx, key, clientv3.WithRange(end), clientv3.WithLimit(500))
		if err != nil {
			return copied, skipped, fmt.Errorf("read %s: %w", key, err)
		}
		for _, kv := range page.Kvs {
			name := string(kv.Key)
			if slices.ContainsFunc(skipOnMigration, func(prefix string) bool { return strings.HasPrefix(name, prefix) }) {
				skipped++
				continue
			}
			// Only where absent: a repeated migration keeps what it copied.
			_, err := dst.Txn(ctx).
				If(clientv3.Compare(clientv3.CreateRevision(name), "=", 0)).
				Then(clientv3.OpPut(name, string(kv.Value))).Commit()
			if err != nil {
				return copied, skipped, fmt.Errorf("write %s: %w", name, err)
			}
			copied++
		}
		if !page.More || len(page.Kvs) == 0 {
			return copied, skipped, nil
		}
		key = string(page.Kvs[len(page.Kvs)-1].Key) + "\x00"
	}
}

func (m *Migration) Ready(context.Context) error { return nil }
func (m *Migration) Stop() error                 { return nil }
