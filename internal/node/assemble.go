// Package node runs what makes a machine a Kubernetes node: containerd with
// runc, the bundled images, the kubelet and kube-proxy, each as a lifecycle
// component, and the pod network (package podnetwork) after them.
package node

import (
	"context"
	"fmt"

	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/bundle"
	"github.com/monokube/monokube/internal/cgroups"
	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/kubeclient"
	"github.com/monokube/monokube/internal/nettools"
	"github.com/monokube/monokube/internal/node/podnetwork"
	"github.com/monokube/monokube/internal/registries"
	"github.com/monokube/monokube/internal/tunnel"
)

// PauseImage is the bundled sandbox image, built by our build (tools/pause).
const PauseImage = "monokube.io/pause:3.10"

// Setup is everything that differs between nodes: where they keep their
// files, who they are, the credentials they got and the cluster's settings.
type Setup struct {
	Layout   datadir.Layout
	Identity Identity
	// NodeIPs are the node's addresses, one per cluster family, primary
	// first (Addresses).
	NodeIPs []string

	// Credentials. Empty ServingCert/ServingKey: the kubelet bootstraps and
	// rotates its certificates through the cluster (a worker).
	KubeletKubeconfig       string
	KubeProxyKubeconfig     string
	CAFile                  string
	ServingCert, ServingKey string

	// Network is the cluster's, the same on every node.
	Network config.NetworkSpec

	// NetworkPolicy enforces NetworkPolicies on this node's pods.
	NetworkPolicy bool
	// CIS hardens the kubelet to the CIS benchmark (the cluster's
	// spec.profile: cis).
	CIS bool

	// StoragePath holds this node's local-path volumes; empty means
	// <data-dir>/storage.
	StoragePath string

	// KubeletStartAfter is waited for before the kubelet starts (a server
	// orders it after its controller-manager).
	KubeletStartAfter func(context.Context) error

	// TunnelServers returns the API servers (host:port) this node keeps a
	// tunnel to (package tunnel); nil, or the cluster's egress selector
	// mode disabled, and it keeps none.
	TunnelServers func() []string

	// Registries are the cluster's registry settings; RegistriesFile this
	// machine's registries.yaml over them. FollowRegistries applies the
	// servers' settings as they change (a worker).
	Registries       registries.Settings
	RegistriesFile   string
	FollowRegistries bool
}

// Parts are a node's components in start order, in two groups: the
// container runtime (containerd and the image import), which needs nothing
// from the cluster and a server starts before its control plane, and the
// node proper (kubelet, kube-proxy, pod network, ...).
type Parts struct {
	Runtime []component.Component
	Node    []component.Component
}

// All is every part in start order.
func (p Parts) All() []component.Component {
	return append(append([]component.Component{}, p.Runtime...), p.Node...)
}

// Components returns a node's runtime in start order: containerd, images,
// kubelet (once the images are in), then (once the Node is registered)
// kube-proxy, and the pod network.
func Components(s Setup) (Parts, error) {
	id := s.Identity
	// Recorded first, so `reset` finds the cgroup root even when this start
	// fails halfway.
	if err := id.record(s.Layout); err != nil {
		return Parts{}, err
	}
	binDir, err := bundle.Extract(s.Layout.BinRoot())
	if err != nil {
		return Parts{}, fmt.Errorf("unpack bundled executables: %w", err)
	}
	iptablesMode, reason, err := nettools.Detect(binDir)
	if err != nil {
		return Parts{}, err
	}
	klog.InfoS("iptables backend chosen", "mode", iptablesMode, "reason", reason)
	// kube-proxy, flannel, the CNI plugins and the policy controller run
	// the network tools by name; containerd, reloading the shims of running
	// pods after a restart, finds the shim by name, not through
	// runtime_path (without it, it cannot reconnect and kills every pod).
	if err := bundle.PutFirstInPath(binDir); err != nil {
		return Parts{}, err
	}
	cgroupMode := cgroups.Detect()
	if err := cgroups.EnsureRoot(cgroupMode, id.CgroupRoot); err != nil {
		return Parts{}, err
	}
	nodeClient, err := kubeclient.New(s.KubeletKubeconfig)
	if err != nil {
		return Parts{}, err
	}
	// Under systemd, systemd manages cgroups; a nested root (tests, several
	// nodes on one machine) is only possible with cgroupfs.
	systemd := cgroups.SystemdManaged() && id.CgroupRoot == ""
	images := &Images{Layout: s.Layout}
	runtime := []component.Component{
		&Containerd{Layout: s.Layout, BinDir: binDir, PauseImage: PauseImage, SystemdCgroup: systemd},
		&registries.Node{
			Layout: s.Layout, NodeName: id.Name, Cluster: s.Registries, LocalFile: s.RegistriesFile, Follow: s.FollowRegistries,
			Client: nodeClient, Kubeconfig: s.KubeletKubeconfig, CAFile: s.CAFile, ServingCert: s.ServingCert, ServingKey: s.ServingKey,
		},
		images,
	}
	startAfter := images.Imported
	if s.KubeletStartAfter != nil {
		startAfter = func(ctx context.Context) error {
			if err := s.KubeletStartAfter(ctx); err != nil {
				return err
			}
			return images.Imported(ctx)
		}
	}
	network := podnetwork.Components(podnetwork.Node{
		Layout: s.Layout, Name: id.Name, IPs: s.NodeIPs, Kubeconfig: s.KubeletKubeconfig, Client: nodeClient,
	}, s.Network)
	var components []component.Component
	if mode := s.Network.EgressSelectorMode; s.TunnelServers != nil && mode != config.EgressDisabled && mode != "" {
		// First: the servers reach the kubelet through it from its start.
		components = append(components, &tunnel.Agent{
			NodeName: id.Name, Kubeconfig: s.KubeletKubeconfig, Servers: s.TunnelServers, Mode: mode, ServiceCIDR: s.Network.ServiceCIDR,
		})
	}
	components = append(components, network.Provider...)
	components = append(components,
		&Kubelet{
			Layout: s.Layout, Kubeconfig: s.KubeletKubeconfig, CAFile: s.CAFile, ServingCert: s.ServingCert, ServingKey: s.ServingKey,
			Identity: id, NodeIP: joinIPs(s.NodeIPs), Cgroups: cgroupMode, SystemdCgroups: systemd,
			ClusterDNS: s.Network.ClusterDNS, ClusterDomain: s.Network.ClusterDomain, StartAfter: startAfter, CIS: s.CIS,
		},
	)
	if s.Network.KubeProxy.Mode != config.ProxyDisabled {
		components = append(components, &KubeProxy{
			Layout: s.Layout, Kubeconfig: s.KubeProxyKubeconfig, NodeName: id.Name, NodeIP: s.NodeIPs[0], Mode: s.Network.KubeProxy.Mode,
			PodCIDR: s.Network.PodCIDR, Client: nodeClient,
		})
	}
	components = append(components, network.CNI)
	if s.NetworkPolicy {
		components = append(components, &NetworkPolicy{
			Client: nodeClient, NodeName: id.Name, ServiceCIDR: s.Network.ServiceCIDR, NodePortRange: defaultNodePortRange,
		})
	}
	storagePath := s.StoragePath
	if storagePath == "" {
		storagePath = s.Layout.StorageDir()
	}
	components = append(components, &StoragePath{Client: nodeClient, NodeName: id.Name, Path: storagePath})
	klog.InfoS("Node runtime configured", "node", id.Name, "nodeIPs", s.NodeIPs, "cgroups", cgroupMode.String(),
		"cgroupRoot", id.CgroupRoot, "systemdCgroups", systemd, "kubeProxy", s.Network.KubeProxy.Mode,
		"network", s.Network.Provider, "bin", binDir)
	return Parts{Runtime: runtime, Node: components}, nil
}
