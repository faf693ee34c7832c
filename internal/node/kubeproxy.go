package node

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spf13/pflag"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	kubeproxyv1alpha1 "k8s.io/kube-proxy/config/v1alpha1"
	kubeproxyapp "k8s.io/kubernetes/cmd/kube-proxy/app"
	utilnode "k8s.io/kubernetes/pkg/util/node"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
)

// KubeProxy runs kube-proxy in this process.
type KubeProxy struct {
	Layout     datadir.Layout
	Kubeconfig string
	NodeName   string
	// NodeIP is the address the kubelet registers; kube-proxy starts only
	// once the Node shows it (see Start).
	NodeIP  string
	Mode    string
	PodCIDR string
	// Client waits for this node's Node object before kube-proxy starts.
	Client kubernetes.Interface

	component.Task
}

var _ component.Component = (*KubeProxy)(nil)

func (p *KubeProxy) Name() string { return "kube-proxy" }

// requiredTools are the programs a kube-proxy mode execs (bundled, see
// package nettools).
func requiredTools(mode string) []string {
	switch mode {
	case config.ProxyIPTables:
		return []string{"iptables", "iptables-save", "iptables-restore"}
	case config.ProxyNFTables:
		return []string{"nft"}
	case config.ProxyIPVS:
		return []string{"ipset", "iptables"}
	}
	return nil
}

// Init fails early, with what to do, when the host lacks what the mode needs.
func (p *KubeProxy) Init(context.Context) error {
	if p.Mode == config.ProxyIPVS {
		if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
			return fmt.Errorf("kube-proxy mode ipvs needs the ip_vs kernel module (CONFIG_IP_VS) and this kernel has none; set spec.network.kubeProxy.mode to iptables or nftables")
		}
	}
	for _, tool := range requiredTools(p.Mode) {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("kube-proxy mode %s needs %q, which monokube carries, and it is not in PATH: was the binary built with `make build`? %w", p.Mode, tool, err)
		}
	}
	return nil
}

// configuration is kube-proxy's config; it reads nothing from the host.
func (p *KubeProxy) configuration(oomScoreAdj int32) *kubeproxyv1alpha1.KubeProxyConfiguration {
	config := &kubeproxyv1alpha1.KubeProxyConfiguration{
		TypeMeta:            metav1.TypeMeta{APIVersion: "kubeproxy.config.k8s.io/v1alpha1", Kind: "KubeProxyConfiguration"},
		HostnameOverride:    p.NodeName,
		HealthzBindAddress:  "127.0.0.1:10256",
		MetricsBindAddress:  "127.0.0.1:10249",
		Mode:                kubeproxyv1alpha1.ProxyMode(p.Mode),
		DetectLocalMode:     "ClusterCIDR",
		ClusterCIDR:         p.PodCIDR,
		BindAddressHardFail: false,
		// kube-proxy applies this to the whole monokube process: keep its value.
		OOMScoreAdj: ptr.To(oomScoreAdj),
		// Zero skips the host-wide nf_conntrack_max write, which fails in a
		// network namespace and would lower a tuned host's limit.
		Conntrack: kubeproxyv1alpha1.KubeProxyConntrackConfiguration{MaxPerCore: ptr.To[int32](0), Min: ptr.To[int32](0)},
	}
	config.ClientConnection.Kubeconfig = p.Kubeconfig
	return config
}

// Start waits until the Node carries this node's IP: kube-proxy exits the
// whole process (os.Exit, pkg/proxy/node.go) when its Node's IPs differ
// from those it read at start. Any address is not enough: after a restart
// the Node still shows the previous run's, and if the IP changed in between
// (a new --node-ip, DHCP) the kubelet's first status update would end us.
// There is no deadline: a worker restarted while its server is away waits
// for it (its pods keep running) instead of giving up and exiting.
func (p *KubeProxy) Start(ctx context.Context) error {
	began, told := time.Now(), time.Now()
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		node, err := p.Client.CoreV1().Nodes().Get(ctx, p.NodeName, metav1.GetOptions{})
		if err == nil && showsIP(node, p.NodeIP) {
			return true, nil
		}
		if time.Since(told) > 30*time.Second {
			told = time.Now()
			reason := "the Node does not show the node IP yet"
			if err != nil {
				reason = err.Error()
			}
			klog.InfoS("kube-proxy waits for its Node", "node", p.NodeName, "nodeIP", p.NodeIP, "waited", time.Since(began).Round(time.Second), "reason", reason)
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for node %s to register with IP %s: %w", p.NodeName, p.NodeIP, err)
	}
	oomScoreAdj, err := currentOOMScoreAdj()
	if err != nil {
		return err
	}
	config, err := yaml.Marshal(p.configuration(oomScoreAdj))
	if err != nil {
		return fmt.Errorf("kube-proxy config: %w", err)
	}
	// Written for operators to read; kube-proxy reads its own copy (see
	// KubeProxyRunConfig).
	if err := os.WriteFile(p.Layout.KubeProxyConfigFile(), config, 0o600); err != nil {
		return fmt.Errorf("write kube-proxy config: %w", err)
	}
	path := p.Layout.KubeProxyRunConfig()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("write kube-proxy config: %w", err)
	}
	if err := os.WriteFile(path, config, 0o600); err != nil {
		return fmt.Errorf("write kube-proxy config: %w", err)
	}
	opts := kubeproxyapp.NewOptions()
	fs := pflag.NewFlagSet("kube-proxy", pflag.ContinueOnError)
	opts.AddFlags(fs)
	opts.ConfigFile = path
	if err := opts.Complete(fs); err != nil {
		return fmt.Errorf("kube-proxy config: %w", err)
	}
	if err := opts.Validate(); err != nil {
		return fmt.Errorf("kube-proxy config: %w", err)
	}
	proxyCtx := klog.NewContext(ctx, klog.Background().WithName("kube-proxy"))
	p.Go(proxyCtx, opts.Run)
	return nil
}

func (p *KubeProxy) Ready(context.Context) error { return nil }

// Stop cancels kube-proxy; upstream cannot fully stop in-process, the
// process exit ends the rest. Its rules stay, so Services keep working
// across a restart.
func (p *KubeProxy) Stop() error {
	if err := p.Task.Stop(time.Second); err != nil {
		klog.InfoS("kube-proxy still stopping; the process exit ends it", "reason", err.Error())
	}
	return nil
}

// showsIP reports whether ip is the Node's address as kube-proxy reads it
// (utilnode.GetNodeHostIPs: InternalIPs first, then ExternalIPs).
func showsIP(node *corev1.Node, ip string) bool {
	if ip == "" {
		return len(node.Status.Addresses) > 0
	}
	ips, err := utilnode.GetNodeHostIPs(node)
	if err != nil {
		return false
	}
	for _, nodeIP := range ips {
		if nodeIP.String() == ip {
			return true
		}
	}
	return false
}
