package sysinfo

import "github.com/monokube/monokube/internal/config"

// For are the checks a role needs under spec; ports are left out (see
// WithPorts), as a starting server's components report those themselves.
func For(spec config.Spec, dataDir string, server, node bool) Options {
	return Options{
		Server: server, Node: node, DataDir: dataDir, CgroupRoot: spec.Worker.CgroupRoot,
		NetworkPolicy: spec.Addons.NetworkPolicy.On(), IPVS: spec.Network.KubeProxy.Mode == config.ProxyIPVS,
		ProtectKernelDefaults: spec.Profile == config.ProfileCIS,
	}
}

// WithPorts adds the TCP ports the role listens on under spec.
func (o Options) WithPorts(spec config.Spec) Options {
	if o.Server {
		o.Ports = append(o.Ports, spec.API.Port, 10257, 10259)
		if spec.Storage.Embedded() {
			o.Ports = append(o.Ports, spec.Storage.Etcd.ClientPort, spec.Storage.Etcd.PeerPort)
		}
	}
	if o.Node {
		o.Ports = append(o.Ports, 10250)
		if !o.Server {
			o.Ports = append(o.Ports, 6444) // the worker's API load balancer
		}
	}
	return o
}
