package podnetwork

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/datadir"
)

// CNI writes the node's CNI network config once the controller-manager has
// given the Node its pod CIDR: a bridge (cni0) with host-local addresses
// from that CIDR, plus portmap for hostPort. containerd's CRI plugin watches
// the directory and the node turns Ready when the file appears.
type CNI struct {
	Layout   datadir.Layout
	NodeName string
	// Client reaches the API server as this node.
	Client kubernetes.Interface
	// PortmapBackend is "iptables" or "nftables", as kube-proxy's mode.
	PortmapBackend string
	// Masquerade makes the bridge SNAT traffic leaving the node's pod CIDR;
	// off when the pod network (flannel) masquerades only what leaves the
	// cluster, so pods on other nodes see real pod IPs.
	Masquerade bool
	// MTU, when set, is asked once the network is up (an overlay's MTU is
	// smaller than the interface's).
	MTU func() int
	// After, when set, is waited for before the config is written: the
	// provider's network being up.
	After func(context.Context) error

	podCIDRs []string
}

var _ component.Component = (*CNI)(nil)

func (c *CNI) Name() string { return "cni" }

func (c *CNI) Init(context.Context) error {
	return os.MkdirAll(c.Layout.CNIConfDir(), 0o755)
}

func (c *CNI) Start(context.Context) error { return nil }

// Ready waits for the provider and the pod CIDR and writes the config.
func (c *CNI) Ready(ctx context.Context) error {
	if c.After != nil {
		if err := c.After(ctx); err != nil {
			return err
		}
	}
	podCIDRs, err := waitForPodCIDR(ctx, c.Client, c.NodeName)
	if err != nil {
		return err
	}
	c.podCIDRs = podCIDRs
	return c.write()
}

// waitForPodCIDR waits until the controller-manager has given the Node its
// pod CIDRs (one per cluster family), and returns them.
func waitForPodCIDR(ctx context.Context, client kubernetes.Interface, nodeName string) ([]string, error) {
	var podCIDRs []string
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		node, err := client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err == nil {
			podCIDRs = node.Spec.PodCIDRs
		}
		return len(podCIDRs) > 0, nil
	})
	if err != nil {
		return nil, fmt.Errorf("waiting for node %s to get a pod CIDR: %w", nodeName, err)
	}
	return podCIDRs, nil
}

// conflist is the CNI network config for the node's pod CIDR.
func (c *CNI) conflist() ([]byte, error) {
	// One range and one default route per family: a dual-stack pod gets
	// an address of each.
	var ranges [][]map[string]string
	var routes []map[string]string
	for _, cidr := range c.podCIDRs {
		ranges = append(ranges, []map[string]string{{"subnet": cidr}})
		dst := "0.0.0.0/0"
		if strings.Contains(cidr, ":") {
			dst = "::/0"
		}
		routes = append(routes, map[string]string{"dst": dst})
	}
	bridge := map[string]any{
		"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": c.Masquerade, "ipMasqBackend": c.PortmapBackend, "hairpinMode": true,
		"ipam": map[string]any{
			"type":    "host-local",
			"ranges":  ranges,
			"routes":  routes,
			"dataDir": c.Layout.CNIIPAMDir(),
		},
	}
	if c.MTU != nil {
		if mtu := c.MTU(); mtu > 0 {
			bridge["mtu"] = mtu
		}
	}
	conflist := map[string]any{
		"cniVersion": "1.0.0",
		"name":       "monokube",
		"plugins": []any{
			bridge,
			map[string]any{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "backend": c.PortmapBackend},
		},
	}
	return json.MarshalIndent(conflist, "", "  ")
}

func (c *CNI) write() error {
	out, err := c.conflist()
	if err != nil {
		return err
	}
	path := filepath.Join(c.Layout.CNIConfDir(), "10-monokube.conflist")
	if current, err := os.ReadFile(path); err == nil && string(current) == string(out) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return fmt.Errorf("write CNI config: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("write CNI config: %w", err)
	}
	klog.InfoS("Wrote CNI config", "podCIDRs", c.podCIDRs, "path", path)
	return nil
}

func (c *CNI) Stop() error { return nil }
