package podnetwork

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/flannel-io/flannel/pkg/backend"
	_ "github.com/flannel-io/flannel/pkg/backend/hostgw" // registers "host-gw"
	_ "github.com/flannel-io/flannel/pkg/backend/vxlan"  // registers "vxlan"
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/subnet/kube"
	"github.com/flannel-io/flannel/pkg/trafficmngr"
	"github.com/flannel-io/flannel/pkg/trafficmngr/iptables"
	"github.com/flannel-io/flannel/pkg/trafficmngr/nftables"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
)

// flannelAnnotationPrefix is flannel's own, so tools that read flannel's
// node annotations work unchanged.
const flannelAnnotationPrefix = "flannel.alpha.coreos.com"

// resyncSeconds is how often flannel re-checks its packet filter rules.
const resyncSeconds = 60

// Flannel runs flannel's kube subnet manager and backend in this process:
// the node's pod CIDR (from the controller-manager) is announced in Node
// annotations, and every other node's CIDR is routed to it (VXLAN or
// host-gw). Flannel masquerades pod traffic leaving the cluster.
type Flannel struct {
	Layout     datadir.Layout
	Kubeconfig string
	Client     kubernetes.Interface // the node's, as Kubeconfig
	NodeName   string
	// NodeIPs are the node's addresses, one per family of ClusterCIDR.
	NodeIPs []string
	// ClusterCIDR is the pod range, or an IPv4 and an IPv6 range.
	ClusterCIDR string
	Backend     string
	// Filter is "iptables" or "nftables", as kube-proxy.
	Filter string

	component.Task
	up  chan struct{}
	mtu int
}

var _ component.Component = (*Flannel)(nil)

func (f *Flannel) Name() string { return "flannel" }

// Init writes flannel's network config, which its subnet manager reads.
func (f *Flannel) Init(context.Context) error {
	v4, v6 := config.CIDRFor(f.ClusterCIDR, "IPv4"), config.CIDRFor(f.ClusterCIDR, "IPv6")
	// Flannel panics deep inside on a node without an address of a family
	// it routes (fatal-exits.md F2).
	for fam, cidr := range map[string]string{"IPv4": v4, "IPv6": v6} {
		if cidr != "" && f.nodeIP(fam) == nil {
			return fmt.Errorf("the pod network (flannel) routes %s %s but the node has no %s address (got %q): pass one with --node-ip (or spec.api.address on a server)",
				fam, cidr, fam, strings.Join(f.NodeIPs, ","))
		}
	}
	if v6 != "" && f.wireGuard() && !kernelHasWireGuard() {
		return fmt.Errorf("the pod network routes IPv6 %s, which userspace WireGuard does not carry and this kernel has no WireGuard: use the vxlan backend", v6)
	}
	backendConf := map[string]any{"Type": f.Backend}
	if f.wireGuard() {
		backendConf = map[string]any{"Type": config.FlannelWireGuard, "PersistentKeepaliveInterval": wireGuardKeepalive}
	}
	conf := map[string]any{"EnableIPv4": v4 != "", "EnableIPv6": v6 != "", "Backend": backendConf}
	if v4 != "" {
		conf["Network"] = v4
	}
	if v6 != "" {
		conf["IPv6Network"] = v6
	}
	netConf, err := json.Marshal(conf)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(f.Layout.FlannelNetConf()), 0o755); err != nil {
		return err
	}
	return os.WriteFile(f.Layout.FlannelNetConf(), netConf, 0o644)
}

// nodeIP is the node's address of the family, or nil.
func (f *Flannel) nodeIP(fam string) net.IP {
	for _, raw := range f.NodeIPs {
		if ip := net.ParseIP(raw); ip != nil && config.IPFamily(ip) == fam {
			return ip
		}
	}
	return nil
}

func (f *Flannel) Start(ctx context.Context) error {
	// Flannel's subnet manager finds its node through this variable; one
	// node per process, so setting it process-wide is safe.
	if err := os.Setenv("NODE_NAME", f.NodeName); err != nil {
		return err
	}
	f.up = make(chan struct{})
	f.Go(klog.NewContext(ctx, klog.Background().WithName("flannel")), f.run)
	return nil
}

// run brings the network up, then keeps it in sync until ctx ends.
func (f *Flannel) run(ctx context.Context) error {
	// The subnet manager's node informer syncs (about a second) while the
	// controller-manager is still allocating this node's pod CIDR.
	subnets, err := kube.NewSubnetManager(ctx, "", f.Kubeconfig, flannelAnnotationPrefix, f.Layout.FlannelNetConf(), false)
	if err != nil {
		return fmt.Errorf("flannel subnet manager: %w", err)
	}
	// Its lease needs the pod CIDR: without one it fails instead of waiting.
	if _, err := waitForPodCIDR(ctx, f.Client, f.NodeName); err != nil {
		return err
	}
	netConf, err := subnets.GetNetworkConfig(ctx)
	if err != nil {
		return fmt.Errorf("flannel network netConf: %w", err)
	}
	external, err := externalInterface(f.NodeIPs[0])
	if err != nil {
		return err
	}
	if v6 := f.nodeIP("IPv6"); v6 != nil {
		external.IfaceV6Addr, external.ExtV6Addr = v6, v6
	}
	if f.nodeIP("IPv4") == nil {
		// IPv6 only: flannel reads the IPv4 fields only when IPv4 is on.
		external.IfaceAddr, external.ExtAddr = nil, nil
	}
	manager := backend.NewManager(ctx, subnets, external)
	var be backend.Backend
	if f.wireGuard() {
		var implementation string
		be, implementation, err = wireGuardBackend(manager, subnets, external, f.Layout.WireGuardKey())
		klog.InfoS("WireGuard for pod traffic between nodes", "implementation", implementation)
	} else {
		be, err = manager.GetBackend(netConf.BackendType)
	}
	if err != nil {
		return fmt.Errorf("flannel backend %s: %w", netConf.BackendType, err)
	}
	var wg sync.WaitGroup
	var network backend.Network
	// The lease reads the Node from the subnet manager's informer, which
	// may not have seen the pod CIDR yet; that one error is worth a retry.
	// The backend keeps ctx for the network's life (WireGuard closes its
	// device when it ends), so it gets run's, not the poll's.
	err = wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, 30*time.Second, true, func(context.Context) (bool, error) {
		network, err = be.RegisterNetwork(ctx, &wg, netConf)
		if err != nil && strings.Contains(err.Error(), "pod cidr not assigned") {
			return false, nil
		}
		return true, err
	})
	if err != nil {
		return fmt.Errorf("flannel %s network: %w", netConf.BackendType, err)
	}
	var traffic trafficmngr.TrafficManager = &iptables.IPTablesManager{}
	if f.Filter == config.ProxyNFTables {
		traffic = &nftables.NFTablesManager{}
	}
	if err := traffic.Init(ctx); err != nil {
		return fmt.Errorf("flannel packet filter: %w", err)
	}
	traffic.SetupAndEnsureForwardRules(ctx, netConf.Network, netConf.IPv6Network, resyncSeconds)
	// The "previous" IPv6 network and subnet are today's: an empty one
	// panics in flannel's comparison (a nil big.Int).
	lease := network.Lease()
	if err := traffic.SetupAndEnsureMasqRules(ctx, netConf.Network, ip.IP4Net{}, ip.IP4Net{},
		netConf.IPv6Network, lease.IPv6Subnet, netConf.IPv6Network, lease, resyncSeconds, false); err != nil {
		return fmt.Errorf("flannel masquerade rules: %w", err)
	}
	f.mtu = network.MTU()
	klog.InfoS("Pod network up", "provider", "flannel", "backend", netConf.BackendType,
		"subnet", network.Lease().Subnet.String(), "ipv6Subnet", network.Lease().IPv6Subnet.String(), "mtu", f.mtu, "interface", external.IfaceName)
	close(f.up)
	network.Run(ctx)
	wg.Wait()
	return nil
}

// Ready waits until the node's subnet is announced and routed.
// Ready is immediate: flannel starts before the kubelet, so that its node
// watch syncs while the Node registers; the CNI config waits for Up.
func (f *Flannel) Ready(context.Context) error { return nil }

// Up waits until the pod network is up (the node's lease taken, routes and
// rules in place).
func (f *Flannel) Up(ctx context.Context) error {
	select {
	case <-f.up:
		return nil
	case <-f.Exited():
		return fmt.Errorf("flannel: %w", f.Err())
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (f *Flannel) Stop() error { return f.Task.Stop(5 * time.Second) }

func (f *Flannel) wireGuard() bool { return config.FlannelSpec{Backend: f.Backend}.WireGuard() }

// MTU is the pod network's MTU, known once Ready.
func (f *Flannel) MTU() int { return f.mtu }

// externalInterface is the interface holding the node's address: flannel
// sends encapsulated (or routed) pod traffic through it.
func externalInterface(nodeIP string) (*backend.ExternalInterface, error) {
	want := net.ParseIP(nodeIP)
	if want == nil {
		return nil, fmt.Errorf("node IP %q is not an IP address", nodeIP)
	}
	interfaces, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	for _, iface := range interfaces {
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		for _, addr := range addrs {
			if ipNet, ok := addr.(*net.IPNet); ok && ipNet.IP.Equal(want) {
				return &backend.ExternalInterface{Iface: &iface, IfaceName: iface.Name, IfaceAddr: want, ExtAddr: want}, nil
			}
		}
	}
	return nil, errors.New("no interface holds the node IP " + nodeIP + " (set --node-ip or spec.api.address to an address of this machine)")
}
