package node

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/bundle"
	"github.com/monokube/monokube/internal/cgroups"
	"github.com/monokube/monokube/internal/component"
)

// PauseImage is the bundled sandbox image, built by our build (tools/pause).
const PauseImage = "monokube.io/pause:3.10"

// Setup is everything that differs between nodes: where they keep their
// files, who they are, the credentials they got and the cluster's settings.
type Setup struct {
	Paths      Paths
	NodeName   string
	NodeIP     string
	CgroupRoot string
	// Labels and Taints the Node registers with.
	Labels map[string]string
	Taints []corev1.Taint

	// Credentials. Empty ServingCert/ServingKey: the kubelet bootstraps and
	// rotates its certificates through the cluster (a worker).
	KubeletKubeconfig       string
	KubeProxyKubeconfig     string
	CAFile                  string
	ServingCert, ServingKey string

	// Cluster settings, the same on every node.
	PodCIDR       string
	ClusterDNS    string
	ClusterDomain string
	KubeProxyMode string
	Network       Network
}

// Components returns a node's runtime in start order: containerd, images,
// kubelet, then (once the Node is registered) kube-proxy, and the pod network.
func Components(s Setup) ([]component.Component, error) {
	binDir, err := bundle.Extract(s.Paths.DataDir)
	if err != nil {
		return nil, fmt.Errorf("unpack bundled executables: %w", err)
	}
	cgroupMode := cgroups.Detect()
	if err := cgroups.EnsureRoot(cgroupMode, s.CgroupRoot); err != nil {
		return nil, err
	}
	nodeClient, err := ClientFor(s.KubeletKubeconfig)
	if err != nil {
		return nil, err
	}
	// Under systemd, systemd manages cgroups; a nested root (tests, several
	// nodes on one machine) is only possible with cgroupfs.
	systemd := cgroups.SystemdManaged() && s.CgroupRoot == ""
	components := []component.Component{
		&Containerd{Paths: s.Paths, BinDir: binDir, PauseImage: PauseImage, SystemdCgroup: systemd},
		&Images{Paths: s.Paths},
		&Kubelet{
			Paths: s.Paths, Kubeconfig: s.KubeletKubeconfig, CAFile: s.CAFile, ServingCert: s.ServingCert, ServingKey: s.ServingKey,
			NodeName: s.NodeName, NodeIP: s.NodeIP, CgroupRoot: s.CgroupRoot, Cgroups: cgroupMode, SystemdCgroups: systemd,
			ClusterDNS: s.ClusterDNS, ClusterDomain: s.ClusterDomain, Labels: s.Labels, Taints: s.Taints,
		},
	}
	if s.KubeProxyMode != ProxyDisabled {
		components = append(components, &KubeProxy{
			Paths: s.Paths, Kubeconfig: s.KubeProxyKubeconfig, NodeName: s.NodeName, Mode: s.KubeProxyMode, PodCIDR: s.PodCIDR, Client: nodeClient,
		})
	}
	// The bridge's masquerading and portmap use the same packet filter as
	// kube-proxy, so an nftables node needs no iptables at all.
	filter := ProxyIPTables
	if s.KubeProxyMode == ProxyNFTables {
		filter = ProxyNFTables
	}
	components = append(components, networkComponents(s, filter, nodeClient)...)
	klog.InfoS("Node runtime configured", "node", s.NodeName, "nodeIP", s.NodeIP, "cgroups", cgroupMode.String(),
		"cgroupRoot", s.CgroupRoot, "systemdCgroups", systemd, "kubeProxy", s.KubeProxyMode, "network", s.Network.Provider, "bin", binDir)
	return components, nil
}

// ClientFor is a client for a kubeconfig file.
func ClientFor(kubeconfig string) (kubernetes.Interface, error) {
	restConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", kubeconfig, err)
	}
	return kubernetes.NewForConfig(restConfig)
}
