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
}

// networkComponents are the pod network's parts: the provider, then the
// node's CNI config, which makes the node Ready. filter is "iptables" or
// "nftables", the packet filter kube-proxy uses.
func networkComponents(s Setup, filter string, client kubernetes.Interface) []component.Component {
	cni := &CNI{Paths: s.Paths, NodeName: s.NodeName, Client: client, PortmapBackend: filter, Masquerade: true}
	if s.Network.Provider != ProviderFlannel {
		return []component.Component{cni}
	}
	flannel := &Flannel{
		Kubeconfig: s.KubeletKubeconfig, Client: client, NodeName: s.NodeName, NodeIP: s.NodeIP,
		ClusterCIDR: s.PodCIDR, Backend: s.Network.FlannelBackend, Filter: filter, Paths: s.Paths,
	}
	cni.Masquerade, cni.MTU = false, flannel.MTU
	return []component.Component{flannel, cni}
}
