package localstorage

import (
	"context"
	"time"

	"k8s.io/klog/v2"
	"sigs.k8s.io/sig-storage-lib-external-provisioner/v13/controller"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/kubeclient"
)

// Provisioner is the component that serves the local-path StorageClass.
type Provisioner struct {
	Kubeconfig string // a privileged identity on the local API server
	// DefaultPath is the storage directory of nodes that do not announce
	// their own (PathAnnotation).
	DefaultPath string
	// HelperImage runs setup and teardown on the nodes.
	HelperImage string

	component.Task
}

var _ component.Component = (*Provisioner)(nil)

func (p *Provisioner) Name() string { return "local-storage" }

func (p *Provisioner) Init(context.Context) error { return nil }

func (p *Provisioner) Start(ctx context.Context) error {
	client, err := kubeclient.New(p.Kubeconfig)
	if err != nil {
		return err
	}
	prov := &provisioner{client: client, defaultPath: p.DefaultPath, helper: helper{client: client, image: p.HelperImage}}
	p.Go(ctx, func(ctx context.Context) error {
		ctx = klog.NewContext(ctx, klog.LoggerWithName(klog.Background(), "local-storage"))
		pc := controller.NewProvisionController(ctx, client, ProvisionerName, prov,
			// One server today; with several, each would need the election.
			controller.LeaderElection(false),
			// A helper pod that cannot start (its node is down) is retried,
			// not given up on.
			controller.FailedProvisionThreshold(0),
			controller.FailedDeleteThreshold(0),
		)
		pc.Run(ctx)
		return nil
	})
	return nil
}

func (p *Provisioner) Ready(context.Context) error { return nil }

func (p *Provisioner) Stop() error { return p.Task.Stop(5 * time.Second) }
