package node

import (
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/internal/component"
)

// Pod network providers (spec.network.provider).
const (
	// ProviderFlannel connects the nodes' pod CIDRs with flannel, embedded.
	ProviderFlannel = "flannel"
	// ProviderNone leaves pods reachable only on their own node (or to a
	// network the user installs).
	ProviderNone = "none"
)

// Network is the pod network's settings.
type Network struct {
	Provider string
	// FlannelBackend is "vxlan" or "host-gw".
	FlannelBackend string
	// ClusterCIDR is every node's pod CIDR together.
	ClusterCIDR string

	filter string // "iptables" or "nftables", as kube-proxy
}

// networkComponents are the pod network's parts: the provider, then the
// node's CNI config, which makes the node Ready.
func networkComponents(s Setup, network Network, client kubernetes.Interface) []component.Component {
	cni := &CNI{Paths: s.Paths, NodeName: s.NodeName, Client: client, PortmapBackend: network.filter, Masquerade: true}
	if network.Provider != ProviderFlannel {
		return []component.Component{cni}
	}
	flannel := &Flannel{
		Kubeconfig: s.KubeletKubeconfig, NodeName: s.NodeName, NodeIP: s.NodeIP,
		ClusterCIDR: network.ClusterCIDR, Backend: network.FlannelBackend, Filter: network.filter, Paths: s.Paths,
	}
	cni.Masquerade, cni.MTU = false, flannel.MTU
	return []component.Component{flannel, cni}
}
