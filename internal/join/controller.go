package join

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
)

// Controller is the server's side of joining: it publishes what workers
// read (settings, RBAC) and runs the certificate Approver.
type Controller struct {
	// Kubeconfig is a privileged identity on the local API server.
	Kubeconfig string
	Settings   ClusterSettings

	component.Task
}

var _ component.Component = (*Controller)(nil)

func (c *Controller) Name() string { return "join-controller" }

func (c *Controller) Init(context.Context) error { return nil }

func (c *Controller) Start(ctx context.Context) error {
	restConfig, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	if err != nil {
		return fmt.Errorf("join controller kubeconfig: %w", err)
	}
	// Publishing is a burst of some twenty requests at every start; the
	// client default (5/s) would throttle it for over a second.
	restConfig.QPS, restConfig.Burst = 50, 100
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	// The RBAC API may still be settling right after the API server is ready.
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		lastErr = PublishClusterSettings(ctx, client, c.Settings)
		return lastErr == nil, nil
	})
	if err != nil {
		return fmt.Errorf("publish cluster settings: %w (last: %v)", err, lastErr)
	}
	approver := &Approver{Client: client}
	c.Go(ctx, func(ctx context.Context) error {
		approver.Run(ctx)
		return nil
	})
	klog.InfoS("Join controller running: approving node certificates")
	return nil
}

func (c *Controller) Ready(context.Context) error { return nil }

func (c *Controller) Stop() error { return c.Task.Stop(5 * time.Second) }
