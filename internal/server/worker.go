package server

import (
	"fmt"
	"net"
	"strings"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/controlplane"
	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/node"
	"github.com/monokube/monokube/internal/pki"
	"github.com/monokube/monokube/internal/registries"
)

// nodeComponents returns the node runtime, in start order, for a server
// that is also a worker: it signs the node's certificates with the CA.
func (s *Server) nodeComponents(clusterPKI pki.Files, addrs addresses, controllerManager *controlplane.ControllerManager, certs *certificates) (node.Parts, error) {
	spec := s.Config.Spec
	identity, err := node.NewIdentity(spec.Worker)
	if err != nil {
		return node.Parts{}, err
	}
	// The node is known to the cluster by the address the API server
	// advertises, unless --node-ip says otherwise.
	given := s.NodeIPs
	if len(given) == 0 {
		given = []string{addrs.advertise}
	}
	nodeIPs, err := node.Addresses(spec.Network, given)
	if err != nil {
		return node.Parts{}, err
	}
	var certIPs []net.IP
	for _, ip := range nodeIPs {
		certIPs = append(certIPs, net.ParseIP(ip))
	}
	nodeRequest := pki.NodeRequest{
		Dir:              s.Layout.AgentPKIDir(),
		CAFiles:          clusterPKI,
		ClusterName:      s.Config.Metadata.Name,
		ServerURL:        addrs.localURL,
		NodeName:         identity.Name,
		NodeIPs:          certIPs,
		Validity:         spec.PKI.Validity(),
		RenewPercentLeft: spec.PKI.RenewPercentLeft,
	}
	if err := certs.add(func() error { _, err := pki.EnsureNode(nodeRequest); return err }); err != nil {
		return node.Parts{}, fmt.Errorf("node certificates: %w", err)
	}
	nodePKI := pki.Files{Dir: nodeRequest.Dir}
	parts, err := node.Components(node.Setup{
		Layout:              s.Layout,
		Identity:            identity,
		NodeIPs:             nodeIPs,
		KubeletKubeconfig:   nodePKI.Kubeconfig(pki.KubeletClient),
		KubeProxyKubeconfig: nodePKI.Kubeconfig(pki.KubeProxy),
		CAFile:              nodePKI.Path("ca.crt"),
		ServingCert:         nodePKI.Pair(pki.KubeletServing),
		ServingKey:          nodePKI.Pair(pki.KubeletServing),
		Network:             spec.Network,
		Registries:          s.registries,
		RegistriesFile:      s.RegistriesFile,
		StoragePath:         s.storagePath(),
		// Its own API server only: the others reach this node directly,
		// as servers reach each other.
		TunnelServers: func() []string { return []string{strings.TrimPrefix(addrs.localURL, "https://")} },
		NetworkPolicy: s.Config.Spec.Addons.NetworkPolicy.On(),
		CIS:           s.Config.Spec.Profile == config.ProfileCIS,
		// The kubelet's CSI plugin shares process-wide state with the
		// controller-manager's; the kubelet must initialise it last.
		KubeletStartAfter: controllerManager.ControllersBuilt,
	})
	if err != nil {
		return node.Parts{}, err
	}
	parts.Node = append(parts.Node, &NodeRole{Kubeconfig: clusterPKI.SelfKubeconfig(), NodeName: identity.Name})
	return parts, nil
}

// publishedRegistries are the registry settings the workers get: the
// config's, with this machine's registries.yaml over them (k3s users keep
// theirs there on the server).
func (s *Server) publishedRegistries() (registries.Settings, error) {
	if s.RegistriesFile == "" {
		return s.registries, nil
	}
	spec, err := config.LoadRegistries(s.RegistriesFile)
	if err != nil {
		return registries.Settings{}, err
	}
	local, err := registries.Resolve(spec)
	if err != nil {
		return registries.Settings{}, fmt.Errorf("registries file %s: %w", s.RegistriesFile, err)
	}
	return s.registries.Over(local), nil
}

// clusterSettings are what every node of this cluster shares.
func (s *Server) clusterSettings() join.ClusterSettings {
	enforce := s.Config.Spec.Addons.NetworkPolicy.On()
	return join.ClusterSettings{ClusterName: s.Config.Metadata.Name, Network: s.Config.Spec.Network, NetworkPolicy: &enforce, Profile: s.Config.Spec.Profile}
}
