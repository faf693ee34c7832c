package server

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/backup"
	"github.com/monokube/monokube/internal/datastore"
)

// resetCluster turns this server's etcd member into a one-member cluster
// that keeps every key, then stops, as k3s does: the operator starts the
// server again without --cluster-reset, and the other servers join anew.
func (s *Server) resetCluster(ctx context.Context) error {
	if s.RestorePath != "" {
		if err := s.stageRestore(); err != nil {
			return err
		}
	} else if !datastore.HasData(s.Layout.EtcdDir()) {
		return fmt.Errorf("--cluster-reset: %s holds no etcd member to recover", s.Layout.EtcdDir())
	}
	addrs, err := resolveAddresses(s.Config.Spec)
	if err != nil {
		return err
	}
	store, err := s.datastore(addrs, nil, &certificates{})
	if err != nil {
		return err
	}
	if err := store.Init(ctx); err != nil {
		return err
	}
	if err := store.Start(ctx); err != nil {
		return err
	}
	readyErr := store.Ready(ctx)
	members, listErr := s.members(ctx, store)
	if err := errors.Join(readyErr, listErr, store.Stop()); err != nil {
		return fmt.Errorf("--cluster-reset: %w", err)
	}
	klog.InfoS("Cluster reset done: etcd is now a one-member cluster with all its data; start the server again without --cluster-reset, then join the other servers anew (monokube reset on them, then server --token)",
		"members", members)
	return nil
}

func (s *Server) members(ctx context.Context, store datastore.Datastore) ([]string, error) {
	client, err := datastore.NewEtcdClient(store.Client().Endpoints, store.Client().TLS)
	if err != nil {
		return nil, err
	}
	defer client.Close()
	list, err := datastore.Members(ctx, client)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, m := range list {
		names = append(names, m.Name)
	}
	return names, nil
}

// stageRestore sets the current etcd data aside (never deleted) and stages
// the backup's snapshot for the member to start from.
func (s *Server) stageRestore() error {
	if err := os.MkdirAll(filepath.Dir(s.Layout.EtcdRestoreFile()), 0o700); err != nil {
		return err
	}
	if err := backup.StageEtcdSnapshot(s.RestorePath, s.Layout); err != nil {
		return fmt.Errorf("--restore-path: %w", err)
	}
	if _, err := os.Stat(s.Layout.EtcdDir()); err == nil {
		aside := s.Layout.EtcdDir() + ".old-" + time.Now().UTC().Format("20060102T150405Z")
		if err := os.Rename(s.Layout.EtcdDir(), aside); err != nil {
			return fmt.Errorf("set the old etcd data aside: %w", err)
		}
		klog.InfoS("Set the old etcd data aside", "path", aside)
	}
	return nil
}
