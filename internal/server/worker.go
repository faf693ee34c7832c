package server

import (
	"fmt"
	"net"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/node"
	"github.com/monokube/monokube/internal/pki"
)

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
	labels, err := config.ParseNodeLabels(spec.Worker.Labels)
	if err != nil {
		return nil, err
	}
	taints, err := config.ParseNodeTaints(spec.Worker.Taints)
	if err != nil {
		return nil, err
	}
	setup := s.clusterSettings().NodeSetup()
	setup.Labels, setup.Taints = labels, taints
	setup.Paths, setup.NodeName, setup.NodeIP, setup.CgroupRoot = paths, nodeName, nodeIP, spec.Worker.CgroupRoot
	setup.KubeletKubeconfig = nodePKI.Kubeconfig(pki.KubeletClient)
	setup.KubeProxyKubeconfig = nodePKI.Kubeconfig(pki.KubeProxy)
	setup.CAFile = nodePKI.Path("ca.crt")
	setup.ServingCert, setup.ServingKey = nodePKI.Cert(pki.KubeletServing), nodePKI.Key(pki.KubeletServing)
	components, err := node.Components(setup)
	if err != nil {
		return nil, err
	}
	return append(components, &NodeRole{Kubeconfig: clusterPKI.AdminKubeconfig(), NodeName: nodeName}), nil
}

// clusterSettings are what every node of this cluster shares.
func (s *Server) clusterSettings() join.ClusterSettings {
	network := s.Config.Spec.Network
	return join.ClusterSettings{
		ClusterName:     s.Config.Metadata.Name,
		PodCIDR:         network.PodCIDR,
		ServiceCIDR:     network.ServiceCIDR,
		ClusterDNS:      network.ClusterDNS,
		ClusterDomain:   network.ClusterDomain,
		KubeProxyMode:   network.KubeProxy.Mode,
		NetworkProvider: network.Provider,
		FlannelBackend:  network.Flannel.Backend,
	}
}

// nodeName is spec.worker.nodeName, or the lower-cased hostname.
func (s *Server) nodeName() (string, error) {
	if name := s.Config.Spec.Worker.NodeName; name != "" {
		return name, nil
	}
	return node.DefaultName()
}
