package controlplane

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	cmapp "k8s.io/kubernetes/cmd/kube-controller-manager/app"
	cmoptions "k8s.io/kubernetes/cmd/kube-controller-manager/app/options"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/kubeclient"
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
	Port int
	// LeaderElect is on when several servers may run: one acts at a time.
	LeaderElect bool
	// SigningDuration is the lifetime of the certificates the cluster signs
	// for workers (their kubelets and kube-proxies), the same as the
	// server's own leaves (spec.pki.leafValidity).
	SigningDuration time.Duration
	// CIS keeps at most 1000 terminated pods (CIS 1.3.1; upstream: 12500).
	CIS       bool
	ExtraArgs Args
	// Flags, when set, records the flags it starts with.
	Flags *FlagRecord

	component.Task
}

var _ component.Component = (*ControllerManager)(nil)
var _ component.Exiter = (*ControllerManager)(nil)

func (c *ControllerManager) Name() string { return "controller-manager" }

func (c *ControllerManager) Init(context.Context) error { return nil }

func (c *ControllerManager) args() Args {
	kubeconfig := c.PKI.Kubeconfig(pki.ControllerManager)
	signing := c.SigningDuration
	if signing == 0 {
		signing = pki.DefaultLeafValidity
	}
	defaults := Args{
		"kubeconfig":                       kubeconfig,
		"authentication-kubeconfig":        kubeconfig,
		"authorization-kubeconfig":         kubeconfig,
		"bind-address":                     "127.0.0.1",
		"secure-port":                      strconv.Itoa(c.Port),
		"cluster-signing-cert-file":        c.PKI.SigningCACert(),
		"cluster-signing-key-file":         c.PKI.CAKey(),
		"cluster-signing-duration":         signing.String(),
		"root-ca-file":                     c.PKI.CACert(),
		"service-account-private-key-file": c.PKI.ServiceAccountKey(),
		// Each controller acts as its own service account, so RBAC limits it.
		"use-service-account-credentials": "true",
		"allocate-node-cidrs":             "true",
		"cluster-cidr":                    c.PodCIDR,
		"service-cluster-ip-range":        c.ServiceCIDR,
		"controllers":                     "*,tokencleaner",
		// At start each controller gets its own service account and token
		// (use-service-account-credentials): some 80 requests that the
		// default 20/s stretched over 4-5 s, and a node is not Ready before
		// the controllers run (pod CIDR) nor its kubelet started (see
		// ControllersBuilt). One server on loopback takes far more.
		"kube-api-qps":           "200",
		"kube-api-burst":         "400",
		"configure-cloud-routes": "false",
		// Otherwise the controller-manager writes under /usr/libexec.
		"flex-volume-plugin-dir": c.FlexVolumeDir,
		"leader-elect":           strconv.FormatBool(c.LeaderElect),
		"profiling":              "false",
	}
	if c.CIS {
		defaults["terminated-pod-gc-threshold"] = "1000"
	}
	return merged(defaults, c.ExtraArgs)
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
	args := c.args()
	if err := applyFlags(flags, args, "spec.controllerManager.extraArgs"); err != nil {
		return err
	}
	if err := c.Flags.Record(c.Name(), args); err != nil {
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

// ControllersBuilt waits until the controller-manager has constructed its
// controllers. A kubelet in this process must not start before: upstream's
// CSI volume plugin keeps its node info manager in a package variable
// (pkg/volume/csi/csi_plugin.go, `nim`) that every Init overwrites with its
// host's node name, and the attach/detach controller's host has none. When
// that Init came after the kubelet's, the kubelet's CSINode initialisation
// (and every later CSI driver registration) worked on node "" and the node
// stayed NotReady ("resource name may not be empty"), then klog.Fatalf'd.
// Upstream adds one health check per controller, all at once, after the
// last constructor ran, so any controller in /healthz?verbose (which lists
// only "ping" before) proves every Init is done. Leader election would
// delay construction until this process leads, and a second construction
// would overwrite the kubelet's again. With leader election (several
// servers), a controller-manager that follows builds nothing until it
// leads, so the wait also ends when another server's leads; should this
// one lead later, CSI drivers registering on its node afterwards need a
// restart (fatal-exits.md, K9).
func (c *ControllerManager) ControllersBuilt(ctx context.Context) error {
	port := c.args()["secure-port"]
	if port == "0" {
		klog.InfoS("Controller-manager health port is off; the kubelet cannot wait for its volume controllers and may race them (CSI)")
		return nil
	}
	built := func(ctx context.Context) error {
		return pollHealthz(ctx, port, "/healthz?verbose", func(_ int, body string) bool {
			return listsControllers(body)
		})
	}
	if !c.LeaderElect {
		return built(ctx)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	following := make(chan struct{})
	go func() {
		if c.anotherLeads(ctx) {
			close(following)
			cancel()
		}
	}()
	err := built(ctx)
	select {
	case <-following:
		klog.InfoS("Another server's controller-manager leads; the kubelet starts without waiting for this one's controllers")
		return nil
	default:
		return err
	}
}

// anotherLeads waits until the controller-manager lease is held by
// another server (upstream's identity is "<hostname>_<uuid>").
func (c *ControllerManager) anotherLeads(ctx context.Context) bool {
	client, err := kubeclient.New(c.PKI.Kubeconfig(pki.ControllerManager))
	if err != nil {
		return false
	}
	host, _ := os.Hostname()
	err = wait.PollUntilContextCancel(ctx, 500*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		lease, err := client.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, "kube-controller-manager", metav1.GetOptions{})
		if err != nil || lease.Spec.HolderIdentity == nil {
			return false, nil
		}
		holder := *lease.Spec.HolderIdentity
		return holder != "" && !strings.HasPrefix(holder, host+"_"), nil
	})
	return err == nil
}

// listsControllers reports whether a /healthz?verbose answer names a check
// other than the ping every server has ("[+]ping ok", "[-]name failed").
func listsControllers(verbose string) bool {
	for _, line := range strings.Split(verbose, "\n") {
		if !strings.HasPrefix(line, "[+]") && !strings.HasPrefix(line, "[-]") {
			continue
		}
		name, _, _ := strings.Cut(line[3:], " ")
		if name != "ping" && name != "log" {
			return true
		}
	}
	return false
}

func (c *ControllerManager) Stop() error { return c.Task.Stop(15 * time.Second) }
