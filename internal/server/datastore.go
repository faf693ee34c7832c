package server

import (
	"net"

	"github.com/monokube/monokube/internal/datastore"
	"github.com/monokube/monokube/internal/node"
	"github.com/monokube/monokube/internal/pki"
)

// datastore returns the configured datastore; an embedded etcd member is
// named after this server's node and reached at its advertised address.
func (s *Server) datastore(addrs addresses, etcdJoin []string, certs *certificates) (datastore.Datastore, error) {
	spec := s.Config.Spec
	opts := datastore.Options{Storage: spec.Storage, Layout: s.Layout, Join: etcdJoin, ClusterReset: s.ClusterReset}
	if spec.Storage.Embedded() {
		identity, err := node.NewIdentity(spec.Worker)
		if err != nil {
			return nil, err
		}
		opts.Member, opts.IP = identity.Name, net.ParseIP(addrs.advertise)
		etcdPKI := pki.EtcdRequest{
			Dir: s.Layout.EtcdPKIDir(), Name: identity.Name, IP: opts.IP,
			Validity: spec.PKI.Validity(), RenewPercentLeft: spec.PKI.RenewPercentLeft,
		}
		if err := certs.add(func() error { _, err := pki.EnsureEtcd(etcdPKI); return err }); err != nil {
			return nil, err
		}
		opts.EtcdPKI = pki.EtcdFiles{Dir: etcdPKI.Dir}
	}
	return datastore.New(opts)
}
