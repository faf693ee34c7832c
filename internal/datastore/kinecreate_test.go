package datastore

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/drivers"
	"github.com/k3s-io/kine/pkg/drivers/generic"
	"github.com/k3s-io/kine/pkg/drivers/sqlite"
	kineserver "github.com/k3s-io/kine/pkg/server"
)

// kine's own SQLite backend, in a temp dir, opened as the server opens
// it: the real datastore, and its database handle.
func sqliteBackend(t *testing.T) kineserver.Backend {
	backend, _ := sqliteBackendDB(t)
	return backend
}

func sqliteBackendDB(t *testing.T) (kineserver.Backend, *sql.DB) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	// A small pool: with the server's twenty idle connections, the tests'
	// background writers starve the writes under test in SQLite's busy
	// handler (seconds per write).
	backend, dialect, err := sqlite.NewVariant(ctx, &wg, "sqlite3", &drivers.Config{
		DataSourceName:       filepath.Join(t.TempDir(), "state.db") + "?" + sqliteParams,
		ConnectionPoolConfig: generic.ConnectionPoolConfig{MaxIdle: 2, MaxIdleTime: time.Minute},
		CompactTimeout:       5 * time.Second, CompactMinRetain: 1000, CompactBatchSize: 1000,
		PollBatchSize: 500, PollInterval: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	dialect.LockWrites = true
	if err := backend.Start(ctx); err != nil {
		t.Fatal(err)
	}
	return backend, dialect.DB
}

// fixedBackends are createdRevision over raw as the server builds it for
// SQLite (with the prepared query) and for other databases (without).
func fixedBackends(t *testing.T, raw kineserver.Backend, db *sql.DB) map[string]createdRevision {
	t.Helper()
	latest, err := sqliteLatest(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]createdRevision{"fixed": {Backend: raw}, "fixed-prepared": {Backend: raw, latest: latest}}
}

// Names deleted and created again while other writes go on: the
// create's answer is the revision the object has, as etcd answers. kine
// v0.17.5 answers its cached current revision, which other writers move
// (the test logs how often that was wrong without the fix).
func TestCreateAfterDeleteAnswersTheObjectsRevision(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	raw, db := sqliteBackendDB(t)
	var others sync.WaitGroup
	for w := range 2 {
		others.Add(1)
		go func() {
			defer others.Done()
			for i := 0; ctx.Err() == nil; i++ {
				_, _ = raw.Create(ctx, fmt.Sprintf("/registry/configmaps/other/%d-%d", w, i), []byte("x"), 0)
				// Paced: flat out, they grew the table until every query
				// under test took seconds.
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wrong := map[string]int{}
	backends := map[string]kineserver.Backend{"kine": raw}
	for name, fixed := range fixedBackends(t, raw, db) {
		backends[name] = fixed
	}
	for name, backend := range backends {
		key := "/registry/configmaps/ns/" + name
		for range 40 {
			rev, err := backend.Create(ctx, key, []byte("v"), 0)
			if err != nil {
				t.Fatal(err)
			}
			_, kv, err := backend.Get(ctx, key, 0, false)
			if err != nil || kv == nil {
				t.Fatalf("get: %v %v", kv, err)
			}
			if rev != kv.ModRevision {
				wrong[name]++
			}
			if _, _, deleted, err := backend.Delete(ctx, key, kv.ModRevision); err != nil || !deleted {
				t.Fatalf("delete: %v %v", deleted, err)
			}
		}
	}
	cancel()
	others.Wait()
	t.Logf("re-creates answered with another revision than the object's, of 40: kine %d, fixed %d, fixed-prepared %d", wrong["kine"], wrong["fixed"], wrong["fixed-prepared"])
	for _, name := range []string{"fixed", "fixed-prepared"} {
		if wrong[name] > 0 {
			t.Errorf("%s: %d of 40 re-creates answered a revision the object does not have", name, wrong[name])
		}
	}
}

// deletedAtOnce is kine with another client that deletes each object the
// moment it is created, before the create's answer is read back.
type deletedAtOnce struct {
	kineserver.Backend
	created []int64 // the revision each deleted object had
}

func (d *deletedAtOnce) Create(ctx context.Context, key string, value []byte, lease int64) (int64, error) {
	rev, err := d.Backend.Create(ctx, key, value, lease)
	if err != nil {
		return rev, err
	}
	_, kv, err := d.Backend.Get(ctx, key, 0, false)
	if err != nil || kv == nil {
		return 0, fmt.Errorf("get: %v %v", kv, err)
	}
	if _, _, deleted, err := d.Backend.Delete(ctx, key, kv.ModRevision); err != nil || !deleted {
		return 0, fmt.Errorf("delete: %v %v", deleted, err)
	}
	d.created = append(d.created, kv.ModRevision)
	return rev, nil
}

// An object deleted by someone else before its create's answer was read
// back: the answer is still the revision it had (found in the key's past).
func TestCreateAnswersTheRevisionOfAnObjectDeletedAtOnce(t *testing.T) {
	ctx := context.Background()
	raw, db := sqliteBackendDB(t)
	for name, backend := range fixedBackends(t, raw, db) {
		t.Run(name, func(t *testing.T) {
			racer := &deletedAtOnce{Backend: raw}
			backend.Backend = racer
			answersDeletedObjectsRevision(t, ctx, racer, backend, name)
		})
	}
}

func answersDeletedObjectsRevision(t *testing.T, ctx context.Context, racer *deletedAtOnce, backend createdRevision, name string) {
	key := "/registry/configmaps/ns/racy-" + name
	for i := range 10 {
		// Other keys move the store's revision, as on a busy cluster.
		if _, err := racer.Backend.Create(ctx, fmt.Sprintf("/registry/configmaps/other/%s-%d", name, i), []byte("x"), 0); err != nil {
			t.Fatal(err)
		}
		rev, err := backend.Create(ctx, key, []byte(fmt.Sprintf("v%d", i)), 0)
		if err != nil {
			t.Fatal(err)
		}
		if want := racer.created[i]; rev != want {
			t.Errorf("create %d answered revision %d; the object had %d", i, rev, want)
		}
	}
}
