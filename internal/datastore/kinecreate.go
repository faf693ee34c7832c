package datastore

import (
	"bytes"
	"context"

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
}

func (b createdRevision) Create(ctx context.Context, key string, value []byte, lease int64) (int64, error) {
	rev, err := b.Backend.Create(ctx, key, value, lease)
	if err != nil {
		return rev, err
	}
	_, kv, getErr := b.Backend.Get(ctx, key, 0, false)
	if getErr == nil && kv != nil && kv.ModRevision == kv.CreateRevision && bytes.Equal(kv.Value, value) {
		return kv.ModRevision, nil
	}
	return rev, nil
}
