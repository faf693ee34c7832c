package datastore

import (
	"bytes"
	"context"
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
}

func (b createdRevision) Create(ctx context.Context, key string, value []byte, lease int64) (int64, error) {
	rev, err := b.Backend.Create(ctx, key, value, lease)
	if err != nil {
		return rev, err
	}
	// The create is committed: read it back even if the caller has gone,
	// and a few times, as the database may be slow to answer (a lossy or
	// partitioned link: the PostgreSQL faults run saw kine's wrong answer
	// leak 11 times when one read-back was all it tried).
	readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var getErr error
	for attempt := 0; attempt < 5; attempt++ {
		var kv *kineserver.KeyValue
		if _, kv, getErr = b.Backend.Get(readCtx, key, 0, false); getErr == nil {
			if kv != nil && kv.ModRevision == kv.CreateRevision && bytes.Equal(kv.Value, value) {
				return kv.ModRevision, nil
			}
			// Changed since: kine's answer is stale either way.
			klog.InfoS("Create read back after another write; keeping kine's revision", "key", key, "revision", rev)
			return rev, nil
		}
		select {
		case <-readCtx.Done():
			attempt = 5
		case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
		}
	}
	// Answering kine's revision would hand the client a version the object
	// may never have had; an error leaves the create's outcome unknown to
	// it, which is the truth (a retry finds the object there).
	klog.InfoS("A create committed but its revision could not be read back; answering an error", "key", key, "err", getErr)
	return 0, fmt.Errorf("create of %s committed, but its revision could not be read back: %w", key, getErr)
}
