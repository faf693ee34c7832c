package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/leaderelection"
	"k8s.io/client-go/tools/leaderelection/resourcelock"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/kubeclient"
)

// Elected runs components on one server at a time: the one holding a
// Lease in kube-system. With several servers, controllers that act on
// the cluster (ServiceLB, the volume provisioner, the Helm controller)
// would otherwise all act at once. Losing the lease after holding it ends
// the process, as the upstream controller-manager does, so that a
// supervisor restarts it and it campaigns again (fatal-exits.md).
type Elected struct {
	Kubeconfig string
	Lease      string
	// Identity is this server's name in the lease; the same name after a
	// restart takes the lease back at once.
	Identity   string
	Components []component.Component

	component.Task
}

var _ component.Component = (*Elected)(nil)

func (e *Elected) Name() string { return "elected:" + e.Lease }

func (e *Elected) Init(context.Context) error { return nil }

func (e *Elected) Start(ctx context.Context) error {
	client, err := kubeclient.New(e.Kubeconfig)
	if err != nil {
		return err
	}
	lock := &resourcelock.LeaseLock{
		LeaseMeta:  metav1.ObjectMeta{Name: e.Lease, Namespace: metav1.NamespaceSystem},
		Client:     client.CoordinationV1(),
		LockConfig: resourcelock.ResourceLockConfig{Identity: e.Identity},
	}
	e.Go(ctx, func(ctx context.Context) error {
		var led bool
		var runErr error
		electionCtx, cancel := context.WithCancel(ctx)
		defer cancel()
		leaderelection.RunOrDie(electionCtx, leaderelection.LeaderElectionConfig{
			Lock: lock, Name: e.Lease, ReleaseOnCancel: true,
			// The upstream controllers' defaults.
			LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second,
			Callbacks: leaderelection.LeaderCallbacks{
				OnStartedLeading: func(ctx context.Context) {
					led = true
					klog.InfoS("Holding the lease; starting its components", "lease", e.Lease, "identity", e.Identity)
					runErr = e.run(ctx)
					cancel()
				},
				OnStoppedLeading: func() { klog.InfoS("Released the lease", "lease", e.Lease, "identity", e.Identity) },
			},
		})
		switch {
		case ctx.Err() != nil:
			return nil
		case runErr != nil:
			return runErr
		case led:
			return fmt.Errorf("lost the %s lease; restart to campaign again", e.Lease)
		}
		return errors.New("leader election ended")
	})
	return nil
}

// run starts the components and keeps them until ctx ends (the lease is
// lost or the server stops) or one of them fails.
func (e *Elected) run(ctx context.Context) error {
	manager := component.NewManager(e.Components...)
	if err := manager.Init(ctx); err != nil {
		return err
	}
	if err := manager.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		manager.Stop()
		return nil
	case err := <-manager.Failed():
		manager.Stop()
		return err
	}
}

func (e *Elected) Ready(context.Context) error { return nil }

func (e *Elected) Stop() error { return e.Task.Stop(30 * time.Second) }
