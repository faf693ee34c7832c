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
	component.Task
	controller *controller.ProvisionController
	// stop ends what the controller started when it was built (its event
	// broadcaster).
	stop context.CancelFunc
}

var _ component.Component = (*Provisioner)(nil)

// NewProvisioner builds the provisioning controller. It must be called
// before the process runs anything concurrently: upstream's constructor
// registers core/v1 into client-go's shared scheme (controller.go,
// `v1.AddToScheme(scheme.Scheme)`), a map write that crashes the process
// ("concurrent map read and map write") when another goroutine decodes an
// object at that moment. kubeconfig is a privileged identity on the local
// API server; defaultPath is the storage directory of nodes that do not
// announce their own (PathAnnotation); helperImage runs setup and
// teardown on the nodes.
func NewProvisioner(kubeconfig, defaultPath, helperImage string) (*Provisioner, error) {
	client, err := kubeclient.New(kubeconfig)
	if err != nil {
		return nil, err
	}
	ctx, stop := context.WithCancel(klog.NewContext(context.Background(), klog.LoggerWithName(klog.Background(), "local-storage")))
	prov := &provisioner{client: client, defaultPath: defaultPath, helper: helper{client: client, image: helperImage}}
	pc := controller.NewProvisionController(ctx, client, ProvisionerName, prov,
		// With several servers, monokube's own lease decides who runs it.
		controller.LeaderElection(false),
		// A helper pod that cannot start (its node is down) is retried,
		// not given up on.
		controller.FailedProvisionThreshold(0),
		controller.FailedDeleteThreshold(0),
	)
	return &Provisioner{controller: pc, stop: stop}, nil
}

func (p *Provisioner) Name() string { return "local-storage" }

func (p *Provisioner) Init(context.Context) error { return nil }

func (p *Provisioner) Start(ctx context.Context) error {
	p.Go(ctx, func(ctx context.Context) error {
		p.controller.Run(klog.NewContext(ctx, klog.LoggerWithName(klog.Background(), "local-storage")))
		return nil
	})
	return nil
}

func (p *Provisioner) Ready(context.Context) error { return nil }

func (p *Provisioner) Stop() error {
	defer p.stop()
	return p.Task.Stop(5 * time.Second)
}
