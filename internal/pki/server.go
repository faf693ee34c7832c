package pki

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/klog/v2"
)

// Files are the paths of a control plane's PKI under one directory
// (<data-dir>/pki), named as kubeadm names them so operators find their way.
type Files struct {
	Dir string
}

// Path returns the path of a file in the PKI directory.
func (f Files) Path(name string) string { return filepath.Join(f.Dir, name) }

func (f Files) CACert() string                { return f.Path("ca.crt") }
func (f Files) CAKey() string                 { return f.Path("ca.key") }
func (f Files) FrontProxyCACert() string      { return f.Path("front-proxy-ca.crt") }
func (f Files) ServiceAccountKey() string     { return f.Path("sa.key") }
func (f Files) ServiceAccountPub() string     { return f.Path("sa.pub") }
func (f Files) AdminKubeconfig() string       { return f.Path("admin.conf") }
func (f Files) Cert(leaf string) string       { return f.Path(leaf + ".crt") }
func (f Files) Key(leaf string) string        { return f.Path(leaf + ".key") }
func (f Files) Kubeconfig(leaf string) string { return f.Path(leaf + ".conf") }

// Leaf and kubeconfig names of the control plane.
const (
	APIServer              = "apiserver"
	APIServerKubeletClient = "apiserver-kubelet-client"
	FrontProxyClient       = "front-proxy-client"
	ControllerManager      = "controller-manager"
	Scheduler              = "scheduler"
	Admin                  = "admin"
)

// ServerRequest is what the control plane's certificates must say.
type ServerRequest struct {
	Dir         string
	ClusterName string
	// LocalURL is how clients on this machine reach the API server; it goes
	// into the component and admin kubeconfigs.
	LocalURL string
	// APIServerDNSNames and APIServerIPs are the serving certificate's SANs.
	APIServerDNSNames []string
	APIServerIPs      []net.IP
	// Validity of every leaf; zero means DefaultLeafValidity.
	Validity time.Duration
	// RenewPercentLeft: see Leaf.RenewPercentLeft.
	RenewPercentLeft int
}

// EnsureServer creates or reuses every CA, key, certificate and kubeconfig
// the control plane needs, re-issuing leaves that no longer fit the request.
func EnsureServer(req ServerRequest) (Files, error) {
	files := Files{Dir: req.Dir}
	if err := os.MkdirAll(req.Dir, 0o700); err != nil {
		return files, fmt.Errorf("create PKI dir: %w", err)
	}
	if err := os.Chmod(req.Dir, 0o700); err != nil {
		return files, fmt.Errorf("restrict PKI dir: %w", err)
	}
	ca, err := LoadOrCreateAuthority(req.Dir, "ca", "kubernetes-ca")
	if err != nil {
		return files, err
	}
	frontProxyCA, err := LoadOrCreateAuthority(req.Dir, "front-proxy-ca", "kubernetes-front-proxy-ca")
	if err != nil {
		return files, err
	}
	if err := EnsureServiceAccountKey(req.Dir); err != nil {
		return files, err
	}
	leaves := []struct {
		ca   *Authority
		leaf Leaf
	}{
		{ca, Leaf{Name: APIServer, CommonName: "kube-apiserver", DNSNames: req.APIServerDNSNames, IPs: req.APIServerIPs, Server: true}},
		{ca, Leaf{Name: APIServerKubeletClient, CommonName: "kube-apiserver-kubelet-client", Organizations: []string{"system:masters"}, Client: true}},
		{frontProxyCA, Leaf{Name: FrontProxyClient, CommonName: "front-proxy-client", Client: true}},
	}
	for _, l := range leaves {
		l.leaf.Validity, l.leaf.RenewPercentLeft = req.Validity, req.RenewPercentLeft
		if err := ensureLogged(l.ca, req.Dir, l.leaf); err != nil {
			return files, err
		}
	}
	if err := writeServingChain(files, ca); err != nil {
		return files, err
	}
	clients := []Leaf{
		{Name: ControllerManager, CommonName: "system:kube-controller-manager", Client: true},
		{Name: Scheduler, CommonName: "system:kube-scheduler", Client: true},
		{Name: Admin, CommonName: "admin", Organizations: []string{"system:masters"}, Client: true},
	}
	for _, leaf := range clients {
		leaf.Validity, leaf.RenewPercentLeft = req.Validity, req.RenewPercentLeft
		if err := ensureKubeconfig(ca, req.Dir, req.ClusterName, req.LocalURL, leaf); err != nil {
			return files, err
		}
	}
	return files, nil
}

// ServingChain is the API server's certificate followed by the cluster CA.
// Serving the CA lets a joining node check it against the pin in its
// token before it sends the token: it never hands a secret to an impostor.
func (f Files) ServingChain() string { return f.Path(APIServer + "-chain.crt") }

func writeServingChain(files Files, ca *Authority) error {
	leaf, err := os.ReadFile(files.Cert(APIServer))
	if err != nil {
		return fmt.Errorf("serving chain: %w", err)
	}
	chain := append(leaf, ca.CertPEM...)
	if current, err := os.ReadFile(files.ServingChain()); err == nil && bytes.Equal(current, chain) {
		return nil
	}
	return writeAtomic(files.ServingChain(), chain, 0o644)
}

func ensureLogged(ca *Authority, dir string, leaf Leaf) error {
	issued, err := ca.Ensure(dir, leaf)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", leaf.Name, err)
	}
	if issued {
		klog.InfoS("Issued certificate", "name", leaf.Name, "subject", leaf.CommonName, "validity", leaf.Validity)
	}
	return nil
}

// ensureKubeconfig keeps a client certificate in dir and a kubeconfig
// embedding it; the kubeconfig is rewritten whenever the certificate or the
// server URL changes.
func ensureKubeconfig(ca *Authority, dir, clusterName, serverURL string, leaf Leaf) error {
	issued, err := ca.Ensure(dir, leaf)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", leaf.Name, err)
	}
	files := Files{Dir: dir}
	path := files.Kubeconfig(leaf.Name)
	if !issued && kubeconfigPointsAt(path, serverURL) {
		return nil
	}
	certPEM, err := os.ReadFile(files.Cert(leaf.Name))
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", leaf.Name, err)
	}
	keyPEM, err := os.ReadFile(files.Key(leaf.Name))
	if err != nil {
		return fmt.Errorf("kubeconfig %s: %w", leaf.Name, err)
	}
	kubeconfig, err := Kubeconfig(clusterName, serverURL, ca.CertPEM, certPEM, keyPEM, leaf.Name)
	if err != nil {
		return err
	}
	if issued {
		klog.InfoS("Issued certificate", "name", leaf.Name, "subject", leaf.CommonName, "validity", leaf.Validity)
	}
	return WriteKubeconfig(path, kubeconfig)
}
