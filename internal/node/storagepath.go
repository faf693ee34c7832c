package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
)

// StoragePathAnnotation on a Node names the directory that holds its
// local-path volumes (internal/addons/localstorage reads it): it lives in
// the node's own data dir, which the server does not know.
const StoragePathAnnotation = "storage.monokube.io/local-path"

// StoragePath creates the node's volume directory and announces it on the
// Node once the kubelet has registered it.
type StoragePath struct {
	Client   kubernetes.Interface // the node's own credentials
	NodeName string
	Path     string

	component.Task
}

var _ component.Component = (*StoragePath)(nil)

func (s *StoragePath) Name() string { return "storage-path" }

func (s *StoragePath) Init(context.Context) error {
	if err := os.MkdirAll(s.Path, 0o755); err != nil {
		return fmt.Errorf("create local storage directory: %w", err)
	}
	return nil
}

func (s *StoragePath) Start(ctx context.Context) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": map[string]string{StoragePathAnnotation: s.Path}}})
	if err != nil {
		return err
	}
	s.Go(ctx, func(ctx context.Context) error {
		err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := s.Client.CoreV1().Nodes().Patch(ctx, s.NodeName, types.MergePatchType, patch, metav1.PatchOptions{})
			return err == nil, nil
		})
		if err == nil {
			klog.InfoS("Announced the node's local storage directory", "path", s.Path)
		}
		<-ctx.Done()
		return nil
	})
	return nil
}

func (s *StoragePath) Ready(context.Context) error { return nil }

func (s *StoragePath) Stop() error { return s.Task.Stop(time.Second) }
