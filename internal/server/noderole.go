package server

import (
	"context"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/kubeclient"
)

// controlPlaneLabel marks a server's own node, as k3s and k0s do, so
// `kubectl get nodes` shows its role. The kubelet may not set it itself
// (NodeRestriction), so the server does with its own credentials.
const controlPlaneLabel = "node-role.kubernetes.io/control-plane"

// NodeRole labels the server's node once it has registered.
type NodeRole struct {
	Kubeconfig string // a privileged identity on the local API server
	NodeName   string

	component.Task
}

var _ component.Component = (*NodeRole)(nil)

func (r *NodeRole) Name() string { return "node-role" }

func (r *NodeRole) Init(context.Context) error { return nil }

func (r *NodeRole) Start(ctx context.Context) error {
	client, err := kubeclient.New(r.Kubeconfig)
	if err != nil {
		return err
	}
	patch := []byte(fmt.Sprintf(`{"metadata":{"labels":{%q:"true"}}}`, controlPlaneLabel))
	r.Go(ctx, func(ctx context.Context) error {
		err := wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().Nodes().Patch(ctx, r.NodeName, types.MergePatchType, patch, metav1.PatchOptions{})
			return err == nil, nil
		})
		if err == nil {
			klog.InfoS("Labelled the server's node", "node", r.NodeName, "label", controlPlaneLabel)
		}
		<-ctx.Done()
		return nil
	})
	return nil
}

func (r *NodeRole) Ready(context.Context) error { return nil }

func (r *NodeRole) Stop() error { return r.Task.Stop(time.Second) }
