package server

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/bundle"
	"github.com/monokube/monokube/internal/cgroups"
	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/node"
	"github.com/monokube/monokube/internal/pki"
)

// PauseImage is the bundled sandbox image, built by our build (tools/pause).
const PauseImage = "monokube.io/pause:3.10"

// nodeComponents returns the node runtime, in start order, for a server
// that is also a worker: it signs the node's certificates with the CA.
func (s *Server) nodeComponents(clusterPKI pki.Files, addrs addresses) ([]component.Component, error) {
	spec := s.Config.Spec
	// The node is known to the cluster by the address the API server advertises.
	nodeIP := addrs.advertise
	nodeName, err := s.nodeName()
	if err != nil {
		return nil, err
	}
	paths := node.NewPaths(s.DataDir)
	binDir, err := bundle.Extract(s.DataDir)
	if err != nil {
		return nil, fmt.Errorf("unpack bundled executables: %w", err)
	}
	cgroupMode := cgroups.Detect()
	if err := cgroups.EnsureRoot(cgroupMode, spec.Worker.CgroupRoot); err != nil {
		return nil, err
	}
	nodePKI, err := pki.EnsureNode(pki.NodeRequest{
		Dir:              paths.Agent("pki"),
		CAFiles:          clusterPKI,
		ClusterName:      s.Config.Metadata.Name,
		ServerURL:        addrs.localURL,
		NodeName:         nodeName,
		NodeIPs:          []net.IP{net.ParseIP(nodeIP)},
		Validity:         spec.PKI.Validity(),
		RenewPercentLeft: spec.PKI.RenewPercentLeft,
	})
	if err != nil {
		return nil, fmt.Errorf("node certificates: %w", err)
	}
	nodeClient, err := clientFor(nodePKI.Kubeconfig(pki.KubeletClient))
	if err != nil {
		return nil, err
	}
	// Under systemd, systemd manages cgroups; a nested root (tests, several
	// nodes on one machine) is only possible with cgroupfs.
	systemd := cgroups.SystemdManaged() && spec.Worker.CgroupRoot == ""
	components := []component.Component{
		&node.Containerd{Paths: paths, BinDir: binDir, PauseImage: PauseImage, SystemdCgroup: systemd},
		&node.Images{Paths: paths},
		&node.Kubelet{
			Paths: paths, PKI: nodePKI, NodeName: nodeName, NodeIP: nodeIP,
			CgroupRoot: spec.Worker.CgroupRoot, Cgroups: cgroupMode, SystemdCgroups: systemd,
			ClusterDNS: spec.Network.ClusterDNS, ClusterDomain: spec.Network.ClusterDomain,
		},
	}
	mode := spec.Network.KubeProxy.Mode
	if mode != node.ProxyDisabled {
		components = append(components, &node.KubeProxy{
			Paths: paths, PKI: nodePKI, NodeName: nodeName, Mode: mode, PodCIDR: spec.Network.PodCIDR, Client: nodeClient,
		})
	}
	portmapBackend := node.ProxyIPTables
	if mode == node.ProxyNFTables {
		portmapBackend = node.ProxyNFTables
	}
	components = append(components, &node.CNI{Paths: paths, NodeName: nodeName, Client: nodeClient, PortmapBackend: portmapBackend})
	klog.InfoS("Node runtime configured", "node", nodeName, "nodeIP", nodeIP, "cgroups", cgroupMode.String(),
		"cgroupRoot", spec.Worker.CgroupRoot, "systemdCgroups", systemd, "kubeProxy", mode, "bin", binDir)
	return components, nil
}

// nodeName is spec.worker.nodeName, or the lower-cased hostname.
func (s *Server) nodeName() (string, error) {
	if name := s.Config.Spec.Worker.NodeName; name != "" {
		return name, nil
	}
	hostname, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("hostname: %w", err)
	}
	return strings.ToLower(hostname), nil
}

func clientFor(kubeconfig string) (kubernetes.Interface, error) {
	restConfig, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", filepath.Base(kubeconfig), err)
	}
	return kubernetes.NewForConfig(restConfig)
}
