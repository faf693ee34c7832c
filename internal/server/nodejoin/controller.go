// Package nodejoin is the server's side of joining: it publishes the
// cluster settings and RBAC that joining nodes read, and decides their
// certificate requests, tying each node name to its node password.
package nodejoin

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/kubeclient"
	"github.com/monokube/monokube/internal/registries"
)

// Controller is the server's side of joining: it publishes what workers
// read (settings, RBAC) and runs the certificate Approver.
type Controller struct {
	// Kubeconfig is a privileged identity on the local API server.
	Kubeconfig string
	Settings   join.ClusterSettings
	// Registries are the registry settings every node gets (a Secret).
	Registries registries.Settings

	component.Task
}

var _ component.Component = (*Controller)(nil)

func (c *Controller) Name() string { return "join-controller" }

func (c *Controller) Init(context.Context) error { return nil }

func (c *Controller) Start(ctx context.Context) error {
	// Publishing is a burst of some twenty requests at every start; the
	// client default (5/s) would throttle it for over a second.
	client, err := kubeclient.New(c.Kubeconfig, kubeclient.WithRate(50, 100))
	if err != nil {
		return fmt.Errorf("join controller: %w", err)
	}
	// The RBAC API may still be settling right after the API server is ready.
	var lastErr error
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, time.Minute, true, func(ctx context.Context) (bool, error) {
		lastErr = PublishClusterSettings(ctx, client, c.Settings, c.Registries)
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
