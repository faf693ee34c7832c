package node

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"time"

	"github.com/cloudnativelabs/kube-router/v2/pkg/controllers/netpol"
	"github.com/cloudnativelabs/kube-router/v2/pkg/healthcheck"
	"github.com/cloudnativelabs/kube-router/v2/pkg/options"
	"github.com/cloudnativelabs/kube-router/v2/pkg/svcip"
	"github.com/cloudnativelabs/kube-router/v2/pkg/utils"
	"github.com/coreos/go-iptables/iptables"
	"github.com/vishvananda/netlink"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
)

// defaultNodePortRange is the API server's, which monokube does not change.
const defaultNodePortRange = "30000-32767"

// NetworkPolicy enforces the cluster's NetworkPolicies for this node's
// pods with kube-router's policy controller (iptables and ipset), as k3s
// embeds it. It reads pods, namespaces and policies with the node's own
// credentials (RBAC grants system:nodes the reads it needs).
type NetworkPolicy struct {
	Client        kubernetes.Interface
	NodeName      string
	ServiceCIDR   string // one range, or one per family
	NodePortRange string // "30000-32767"

	component.Task
}

var _ component.Component = (*NetworkPolicy)(nil)

func (n *NetworkPolicy) Name() string { return "network-policy" }

// Init checks what the controller execs, so a missing tool stops the
// start with its name instead of policies silently not applying.
func (n *NetworkPolicy) Init(context.Context) error {
	for _, tool := range []string{"ipset", "iptables-save", "iptables-restore", "ip6tables-save", "ip6tables-restore"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("NetworkPolicy enforcement needs %s, which monokube carries, and it is not in PATH (was the binary built with `make build`?): %w", tool, err)
		}
	}
	return nil
}

func (n *NetworkPolicy) Start(ctx context.Context) error {
	services := config.CIDRs(n.ServiceCIDR)
	v4 := config.CIDRFor(n.ServiceCIDR, "IPv4") != ""
	v6 := config.CIDRFor(n.ServiceCIDR, "IPv6") != ""
	// One iptables and one ipset handler per family the cluster has.
	tables := map[corev1.IPFamily]utils.IPTablesHandler{}
	sets := map[corev1.IPFamily]utils.IPSetHandler{}
	for _, fam := range []struct {
		on       bool
		family   corev1.IPFamily
		protocol iptables.Protocol
	}{{v4, corev1.IPv4Protocol, iptables.ProtocolIPv4}, {v6, corev1.IPv6Protocol, iptables.ProtocolIPv6}} {
		if !fam.on {
			continue
		}
		ipt, err := iptables.NewWithProtocol(fam.protocol)
		if err != nil {
			return fmt.Errorf("network policy: %s iptables: %w", fam.family, err)
		}
		ipset, err := utils.NewIPSet(fam.family == corev1.IPv6Protocol)
		if err != nil {
			return fmt.Errorf("network policy: %s ipset: %w", fam.family, err)
		}
		tables[fam.family], sets[fam.family] = ipt, ipset
	}
	cfg := options.NewKubeRouterConfig()
	cfg.ClusterIPCIDRs = services
	cfg.EnableIPv4, cfg.EnableIPv6 = v4, v6
	cfg.HostnameOverride = n.NodeName
	cfg.NodePortRange = n.NodePortRange
	cfg.RunFirewall, cfg.RunRouter, cfg.RunServiceProxy = true, false, false
	cfg.MetricsEnabled = false
	ranges, err := svcip.NewValidator(svcip.Config{ClusterIPCIDRs: cfg.ClusterIPCIDRs, EnableIPv4: v4, EnableIPv6: v6})
	if err != nil {
		return fmt.Errorf("network policy: service range: %w", err)
	}
	factory := informers.NewSharedInformerFactory(n.Client, 0)
	pods := factory.Core().V1().Pods().Informer()
	namespaces := factory.Core().V1().Namespaces().Informer()
	policies := factory.Networking().V1().NetworkPolicies().Informer()
	controller, err := netpol.NewNetworkPolicyController(n.Client, cfg, pods, policies, namespaces, &sync.Mutex{}, links{},
		tables, sets, ranges)
	if err != nil {
		return fmt.Errorf("network policy controller: %w", err)
	}
	podEvents := whilePoliciesExist{handler: controller.PodEventHandler, policies: policies.GetStore()}
	for informer, handler := range map[cache.SharedIndexInformer]cache.ResourceEventHandler{
		pods: podEvents, namespaces: controller.NamespaceEventHandler, policies: controller.NetworkPolicyEventHandler,
	} {
		if _, err := informer.AddEventHandler(handler); err != nil {
			return err
		}
	}
	n.Go(ctx, func(ctx context.Context) error {
		factory.Start(ctx.Done())
		defer factory.Shutdown()
		if !cache.WaitForCacheSync(ctx.Done(), pods.HasSynced, namespaces.HasSynced, policies.HasSynced) {
			return nil
		}
		// The controller reports heartbeats; nothing here watches them.
		heartbeats := make(chan *healthcheck.ControllerHeartbeat, 16)
		go func() {
			for {
				select {
				case <-heartbeats:
				case <-ctx.Done():
					return
				}
			}
		}()
		var wg sync.WaitGroup
		wg.Add(1)
		klog.InfoS("Enforcing NetworkPolicies on this node", "node", n.NodeName)
		controller.Run(heartbeats, ctx.Done(), &wg)
		wg.Wait()
		return nil
	})
	return nil
}

func (n *NetworkPolicy) Ready(context.Context) error { return nil }

func (n *NetworkPolicy) Stop() error { return n.Task.Stop(10 * time.Second) }

// whilePoliciesExist passes pod events to the controller only while the
// cluster has a NetworkPolicy. Each pod event makes kube-router rebuild
// every pod's chains (iptables-save, iptables-restore, ipset): while 100
// pods started, that was about a tenth of the machine's CPU, and with no
// policy every chain only lets traffic through, as no chain does. The
// first policy's own event makes the controller sync every pod there is,
// and its periodic sync removes chains of pods deleted meanwhile.
type whilePoliciesExist struct {
	handler  cache.ResourceEventHandler
	policies cache.Store
}

func (w whilePoliciesExist) any() bool { return len(w.policies.ListKeys()) > 0 }

func (w whilePoliciesExist) OnAdd(obj any, initial bool) {
	if w.any() {
		w.handler.OnAdd(obj, initial)
	}
}

func (w whilePoliciesExist) OnUpdate(oldObj, newObj any) {
	if w.any() {
		w.handler.OnUpdate(oldObj, newObj)
	}
}

func (w whilePoliciesExist) OnDelete(obj any) {
	if w.any() {
		w.handler.OnDelete(obj)
	}
}

// links answers the controller's questions about local interfaces.
type links struct{}

func (links) LinkList(context.Context) ([]netlink.Link, error) { return netlink.LinkList() }

func (links) AddrList(_ context.Context, link netlink.Link, family int) ([]netlink.Addr, error) {
	return netlink.AddrList(link, family)
}

var _ utils.LocalLinkQuerier = links{}
