package datastore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"k8s.io/klog/v2"

	kineserver "github.com/k3s-io/kine/pkg/server"
)

// createdRevision corrects the revision kine answers for the create of a
// key that existed before and was deleted. kine v0.17.5's
// LogStructured.Create (pkg/logstructured/logstructured.go) first appends
// without a previous revision; when the key has a tombstone that append
// fails, and it appends again after reading the tombstone, but into a
// variable that shadows the one it returns, so it answers 0 and then the
// store's current revision (adjustRevision). The API server makes that
// answer the new object's resourceVersion: a client saw a version the
// object never had, and an update with it failed with a false conflict
// (found by test/faults: every deleted-and-recreated name on SQLite and
// PostgreSQL broke linearizability). etcd answers the put's own revision.
//
// The fix reads the key back: when its current row is a create holding
// exactly the value just written, that row is this create (a later
// create of the same name by someone else is another object, with another
// uid in its bytes), and its revision is the answer. Otherwise the key
// changed since, and kine's answer stays: an update or delete after it
// already made any version of this create stale.
type createdRevision struct {
	kineserver.Backend
	// latest, when set, reads the key's newest row in one prepared query
	// (SQLite). kine's Get builds and parses a query with subqueries on
	// every call: reading the answer back through it was 13% of the
	// server's CPU while 8 clients created ConfigMaps (CPU profile).
	latest func(ctx context.Context, key string) (latestRow, error)
}

// latestRow is a key's newest row in kine's table.
type latestRow struct {
	found, created, deleted bool
	id                      int64
	value                   []byte
}

func (b createdRevision) Create(ctx context.Context, key string, value []byte, lease int64) (int64, error) {
	rev, err := b.Backend.Create(ctx, key, value, lease)
	if err != nil {
		return rev, err
	}
	// The create is committed: find its row even if the caller has gone,
	// and try again if the database is slow to answer (a lossy or
	// partitioned link).
	readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var findErr error
	for attempt := range 5 {
		var created int64
		if created, findErr = b.createdAt(readCtx, key, value, rev); findErr == nil {
			return created, nil
		}
		select {
		case <-readCtx.Done():
		case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
			continue
		}
		break
	}
	// Answering kine's revision would hand the client a version the object
	// may never have had; an error leaves the create's outcome unknown to
	// it, which is the truth (a retry finds the object there).
	klog.InfoS("A create committed but its revision could not be found; answering an error", "key", key, "err", findErr)
	return 0, fmt.Errorf("create of %s committed, but its revision could not be found: %w", key, findErr)
}

// maxProbes bounds how many past revisions createdAt looks at.
const maxProbes = 64

// createdAt finds the revision of the row this create wrote: the key's
// current row if nothing changed it since (the common case), else the row
// the key held at some revision at or below atMost, kine's answer, which is
// never below the create's own. The PostgreSQL faults run showed why the
// current row alone is not enough: another client deleted the object
// right after its create, and kine's wrong answer leaked 4 times.
func (b createdRevision) createdAt(ctx context.Context, key string, value []byte, atMost int64) (int64, error) {
	ours := func(kv *kineserver.KeyValue) bool {
		return kv != nil && kv.ModRevision == kv.CreateRevision && bytes.Equal(kv.Value, value)
	}
	if b.latest != nil {
		row, err := b.latest(ctx, key)
		if err != nil {
			return 0, err
		}
		if row.found && row.created && !row.deleted && bytes.Equal(row.value, value) {
			return row.id, nil
		}
	}
	_, kv, err := b.Backend.Get(ctx, key, 0, false)
	if err != nil {
		return 0, err
	}
	if ours(kv) {
		return kv.ModRevision, nil
	}
	for rev := atMost; rev > 0 && rev > atMost-maxProbes; rev-- {
		_, kv, err := b.Backend.Get(ctx, key, rev, false)
		if err != nil {
			return 0, err
		}
		if ours(kv) {
			return kv.ModRevision, nil
		}
	}
	return 0, fmt.Errorf("no row of %s with the value written in the %d revisions up to %d", key, maxProbes, atMost)
}

// latestRowQuery reads a key's newest row through kine's (name, id) index.
const latestRowQuery = `SELECT id, created, deleted, value FROM kine WHERE name = ? ORDER BY id DESC LIMIT 1`

// sqliteLatest prepares latestRowQuery once; database/sql keeps it
// prepared on each connection it is used on.
func sqliteLatest(ctx context.Context, db *sql.DB) (func(context.Context, string) (latestRow, error), error) {
	stmt, err := db.PrepareContext(ctx, latestRowQuery)
	if err != nil {
		return nil, fmt.Errorf("prepare the created-revision query: %w", err)
	}
	return func(ctx context.Context, key string) (latestRow, error) {
		var row latestRow
		var created, deleted int64
		err := stmt.QueryRowContext(ctx, key).Scan(&row.id, &created, &deleted, &row.value)
		if errors.Is(err, sql.ErrNoRows) {
			return row, nil
		}
		if err != nil {
			return row, err
		}
		row.found, row.created, row.deleted = true, created != 0, deleted != 0
		return row, nil
	}, nil
}
