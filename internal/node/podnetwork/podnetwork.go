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
	// IPs are the node's addresses, one per cluster family, primary first.
	IPs []string
	// Kubeconfig and Client are the node's own identity.
	Kubeconfig string
	Client     kubernetes.Interface
}

// Parts are the pod network's components. Provider (flannel; none with
// another provider) starts before the kubelet: its watch of the API syncs
// (flannel waits a full second for that) while the Node registers and gets
// its pod CIDR. CNI starts after the kubelet and kube-proxy; it waits for
// the provider, and its config makes the node Ready.
type Parts struct {
	Provider []component.Component
	CNI      component.Component
}

func Components(node Node, network config.NetworkSpec) Parts {
	filter := network.KubeProxy.PacketFilter()
	cni := &CNI{Layout: node.Layout, NodeName: node.Name, Client: node.Client, PortmapBackend: filter, Masquerade: true}
	if network.Provider != config.ProviderFlannel {
		return Parts{CNI: cni}
	}
	flannel := &Flannel{
		Layout: node.Layout, Kubeconfig: node.Kubeconfig, Client: node.Client, NodeName: node.Name, NodeIPs: node.IPs,
		ClusterCIDR: network.PodCIDR, Backend: network.Flannel.Backend, Filter: filter,
	}
	cni.Masquerade, cni.MTU, cni.After = false, flannel.MTU, flannel.Up
	return Parts{Provider: []component.Component{flannel}, CNI: cni}
}
