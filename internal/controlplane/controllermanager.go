package controlplane

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	cmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/pki"
)

// ControllerManager runs kube-controller-manager in-process.
type ControllerManager struct {
	PKI pki.Files
	// FlexVolumeDir is shared with the kubelet; without it the
	// controller-manager writes under /usr/libexec.
	FlexVolumeDir string
	PodCIDR       string
	ServiceCIDR   string
	// Port is the health and metrics port on 127.0.0.1; 0 turns it off.
	Port      int
	ExtraArgs Args

	component.Task
}

var _ component.Component = (*ControllerManager)(nil)
var _ component.Exiter = (*ControllerManager)(nil)

func (c *ControllerManager) Name() string { return "controller-manager" }

func (c *ControllerManager) Init(context.Context) error { return nil }

func (c *ControllerManager) args() Args {
	kubeconfig := c.PKI.Kubeconfig(pki.ControllerManager)
	return merged(Args{
		"kubeconfig":                       kubeconfig,
		"authentication-kubeconfig":        kubeconfig,
		"authorization-kubeconfig":         kubeconfig,
		"bind-address":                     "127.0.0.1",
		"secure-port":                      strconv.Itoa(c.Port),
		"cluster-signing-cert-file":        c.PKI.CACert(),
		"cluster-signing-key-file":         c.PKI.CAKey(),
		"root-ca-file":                     c.PKI.CACert(),
		"service-account-private-key-file": c.PKI.ServiceAccountKey(),
		// Each controller acts as its own service account, so RBAC limits it.
		"use-service-account-credentials": "true",
		"allocate-node-cidrs":             "true",
		"cluster-cidr":                    c.PodCIDR,
		"service-cluster-ip-range":        c.ServiceCIDR,
		"controllers":                     "*,tokencleaner",
		"configure-cloud-routes":          "false",
		// Otherwise the controller-manager writes under /usr/libexec.
		"flex-volume-plugin-dir": c.FlexVolumeDir,
		// One server today; leader election arrives with HA control planes.
		"leader-elect": "false",
		"profiling":    "false",
	}, c.ExtraArgs)
}

// Start uses the options → Config → Run path: the cobra command re-applies
// process-wide logging and exits the process on errors.
func (c *ControllerManager) Start(ctx context.Context) error {
	opts, err := cmoptions.NewKubeControllerManagerOptions()
	if err != nil {
		return fmt.Errorf("options: %w", err)
	}
	known, disabled, aliases := cmapp.KnownControllers(), cmapp.ControllersDisabledByDefault(), cmapp.ControllerAliases()
	flags := opts.Flags(known, disabled, aliases)
	opts.ParsedFlags = &flags
	if err := applyFlags(flags, c.args(), "spec.controllerManager.extraArgs"); err != nil {
		return err
	}
	if err := opts.ComponentGlobalsRegistry.Set(); err != nil {
		return fmt.Errorf("feature gates: %w", err)
	}
	// It watches deprecated APIs on purpose; their warnings are noise here.
	rest.SetDefaultWarningHandler(rest.NoWarnings{})
	config, err := opts.Config(ctx, known, disabled, aliases)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	c.Go(ctx, func(ctx context.Context) error { return cmapp.Run(ctx, config.Complete()) })
	return nil
}

func (c *ControllerManager) Ready(ctx context.Context) error {
	return waitHealthy(ctx, c.args()["secure-port"])
}

func (c *ControllerManager) Stop() error { return c.Task.Stop(15 * time.Second) }
