package pki

import (
	"fmt"
	"net"
	"os"
	"time"
)

// Node certificate names in a node's PKI dir (<data-dir>/agent/pki).
const (
	KubeletClient  = "kubelet"
	KubeletServing = "kubelet-serving"
	KubeProxy      = "kube-proxy"
)

// NodeRequest is what a node's certificates must say.
type NodeRequest struct {
	// Dir is the node's PKI dir; the cluster CA is read from CAFiles.
	Dir         string
	CAFiles     Files
	ClusterName string
	ServerURL   string
	NodeName    string
	NodeIPs     []net.IP
	Validity    time.Duration
	// RenewPercentLeft: see Leaf.RenewPercentLeft.
	RenewPercentLeft int
}

// EnsureNode keeps, signed by the cluster CA: the kubelet's client
// certificate (system:node:<name> in system:nodes, so the Node authorizer
// and NodeRestriction apply) with its kubeconfig, the kubelet's serving
// certificate (so the API server verifies it for logs and exec), and
// kube-proxy's client certificate with its kubeconfig. It also copies the CA
// certificate next to them, for the kubelet's client authentication.
func EnsureNode(req NodeRequest) (Files, error) {
	files := Files{Dir: req.Dir}
	if err := os.MkdirAll(req.Dir, 0o700); err != nil {
		return files, fmt.Errorf("create node PKI dir: %w", err)
	}
	ca, err := loadAuthority(req.CAFiles.CACert(), req.CAFiles.CAKey())
	if err != nil {
		return files, err
	}
	if err := writeIfChanged(files.CACert(), ca.CertPEM, 0o644); err != nil {
		return files, err
	}
	common := func(l Leaf) Leaf {
		l.Validity, l.RenewPercentLeft = req.Validity, req.RenewPercentLeft
		return l
	}
	serving := common(Leaf{
		Name: KubeletServing, CommonName: "system:node:" + req.NodeName, Organizations: []string{"system:nodes"},
		DNSNames: []string{req.NodeName, "localhost"}, IPs: append([]net.IP{net.ParseIP("127.0.0.1")}, req.NodeIPs...),
		Server: true,
	})
	if err := ensureLogged(ca, req.Dir, serving); err != nil {
		return files, err
	}
	clients := []Leaf{
		common(Leaf{Name: KubeletClient, CommonName: "system:node:" + req.NodeName, Organizations: []string{"system:nodes"}, Client: true}),
		common(Leaf{Name: KubeProxy, CommonName: "system:kube-proxy", Client: true}),
	}
	for _, leaf := range clients {
		if err := ensureKubeconfig(ca, req.Dir, req.ClusterName, req.ServerURL, leaf, false); err != nil {
			return files, err
		}
	}
	return files, nil
}
