// Package podnetwork connects a node's pods: the CNI config that gives
// them addresses on the node's bridge, and the embedded flannel that routes
// every node's pod CIDR to it.
package podnetwork

import (
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
)

// Node is what the pod network needs to know about the node it runs on.
type Node struct {
	Layout datadir.Layout
	Name   string
	IP     string
	// Kubeconfig and Client are the node's own identity.
	Kubeconfig string
	Client     kubernetes.Interface
}

// Components are the pod network's parts in start order: the provider,
// then the node's CNI config, which makes the node Ready.
func Components(node Node, network config.NetworkSpec) []component.Component {
	filter := network.KubeProxy.PacketFilter()
	cni := &CNI{Layout: node.Layout, NodeName: node.Name, Client: node.Client, PortmapBackend: filter, Masquerade: true}
	if network.Provider != config.ProviderFlannel {
		return []component.Component{cni}
	}
	flannel := &Flannel{
		Layout: node.Layout, Kubeconfig: node.Kubeconfig, Client: node.Client, NodeName: node.Name, NodeIP: node.IP,
		ClusterCIDR: network.PodCIDR, Backend: network.Flannel.Backend, Filter: filter,
	}
	cni.Masquerade, cni.MTU = false, flannel.MTU
	return []component.Component{flannel, cni}
}
