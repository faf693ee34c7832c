package datastore

import (
	"errors"
	"fmt"
	"os"

	"go.etcd.io/etcd/etcdutl/v3/snapshot"
	"go.uber.org/zap"
	"k8s.io/klog/v2"
)

// revisionBump moves the restored store's revision far past anything a
// client saw before the restore, and marks the old ones compacted: watches
// and informers relist instead of waiting for revisions that were lost.
const revisionBump = 1_000_000_000

// restoreStaged turns a snapshot staged by `monokube restore` (or
// --cluster-reset --restore-path) into this server's one-member etcd.
func (e *Etcd) restoreStaged() error {
	if _, err := os.Stat(e.RestoreFile); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if HasData(e.Dir) {
		return fmt.Errorf("an etcd snapshot is staged for restore (%s) but %s already holds etcd data; move one of them away", e.RestoreFile, e.Dir)
	}
	// Restore creates the directory itself and refuses an existing one.
	if err := os.RemoveAll(e.Dir); err != nil {
		return fmt.Errorf("clear %s: %w", e.Dir, err)
	}
	klog.InfoS("Restoring etcd from a snapshot", "snapshot", e.RestoreFile, "member", e.Member)
	err := snapshot.NewV3(zap.NewNop()).Restore(snapshot.RestoreConfig{
		SnapshotPath:        e.RestoreFile,
		Name:                e.Member,
		OutputDataDir:       e.Dir,
		PeerURLs:            []string{e.peerURL()},
		InitialCluster:      e.Member + "=" + e.peerURL(),
		InitialClusterToken: "etcd-cluster",
		RevisionBump:        revisionBump,
		MarkCompacted:       true,
	})
	if err != nil {
		_ = os.RemoveAll(e.Dir)
		return fmt.Errorf("restore etcd snapshot %s: %w", e.RestoreFile, err)
	}
	if err := os.Chmod(e.Dir, 0o700); err != nil {
		return err
	}
	return os.Remove(e.RestoreFile)
}
