package pki

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// EtcdFiles are the embedded etcd's certificates under <pki>/etcd. etcd has
// a CA of its own, shared by every server: a certificate from the cluster
// CA (a kubelet's, a user's) must never open the datastore.
type EtcdFiles struct {
	Dir string
}

func (f EtcdFiles) path(name string) string { return filepath.Join(f.Dir, name) }
func (f EtcdFiles) CACert() string          { return f.path("ca.crt") }
func (f EtcdFiles) CAKey() string           { return f.path("ca.key") }

// ServerPair, PeerPair and ClientPair are each certificate with its key in
// one file (see PairFile): etcd re-reads them at each handshake. The client
// pair is what the API server and the etcd commands present to etcd.
func (f EtcdFiles) ServerPair() string { return PairFile(f.Dir, "server") }
func (f EtcdFiles) PeerPair() string   { return PairFile(f.Dir, "peer") }
func (f EtcdFiles) ClientPair() string { return PairFile(f.Dir, "client") }

// EtcdRequest is what the embedded etcd's certificates must say.
type EtcdRequest struct {
	// Dir is <pki>/etcd.
	Dir string
	// Name is the member's name; IP is the address peers and joining
	// servers reach it at.
	Name             string
	IP               net.IP
	Validity         time.Duration
	RenewPercentLeft int
}

// EnsureEtcd creates or reuses the etcd CA and this member's server, peer
// and client certificates.
func EnsureEtcd(req EtcdRequest) (EtcdFiles, error) {
	files := EtcdFiles{Dir: req.Dir}
	if err := os.MkdirAll(req.Dir, 0o700); err != nil {
		return files, fmt.Errorf("create etcd PKI dir: %w", err)
	}
	ca, err := LoadOrCreateAuthority(req.Dir, "ca", "etcd-ca")
	if err != nil {
		return files, err
	}
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}
	if req.IP != nil && !req.IP.IsLoopback() {
		ips = append(ips, req.IP)
	}
	names := []string{"localhost", req.Name}
	leaves := []Leaf{
		{Name: "server", CommonName: "etcd-server:" + req.Name, DNSNames: names, IPs: ips, Server: true, Client: true},
		{Name: "peer", CommonName: "etcd-peer:" + req.Name, DNSNames: names, IPs: ips, Server: true, Client: true},
		{Name: "client", CommonName: "etcd-client:" + req.Name, Client: true},
	}
	for _, leaf := range leaves {
		leaf.Validity, leaf.RenewPercentLeft = req.Validity, req.RenewPercentLeft
		if err := ensureLogged(ca, req.Dir, leaf); err != nil {
			return files, err
		}
	}
	return files, nil
}
