package pki

import (
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
func (f Files) SigningCACert() string         { return f.Path("ca-signing.crt") }
func (f Files) FrontProxyCACert() string      { return f.Path("front-proxy-ca.crt") }
func (f Files) ServiceAccountKey() string     { return f.Path("sa.key") }
func (f Files) ServiceAccountPub() string     { return f.Path("sa.pub") }
func (f Files) AdminKubeconfig() string       { return f.Path("admin.conf") }
func (f Files) Cert(leaf string) string       { return f.Path(leaf + ".crt") }
func (f Files) Key(leaf string) string        { return f.Path(leaf + ".key") }
func (f Files) Kubeconfig(leaf string) string { return f.Path(leaf + ".conf") }

// Pair is the leaf's certificate and key in one file (see PairFile): what
// components are given as both.
func (f Files) Pair(leaf string) string { return PairFile(f.Dir, leaf) }

// SelfKubeconfig is the admin identity for this process's own clients: it
// names the certificate files, so a renewal reaches them while they run;
// admin.conf embeds them, for users to copy.
func (f Files) SelfKubeconfig() string { return f.Path("monokube.conf") }

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
	// The controller-manager's signer takes exactly one certificate;
	// ca.crt holds two during a CA rotation.
	if err := writeIfChanged(files.SigningCACert(), ca.SignerPEM(), 0o644); err != nil {
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
		{ca, Leaf{Name: APIServer, CommonName: "kube-apiserver", DNSNames: req.APIServerDNSNames, IPs: req.APIServerIPs, Server: true, ServeCA: true}},
		{ca, Leaf{Name: APIServerKubeletClient, CommonName: "kube-apiserver-kubelet-client", Organizations: []string{"system:masters"}, Client: true}},
		{frontProxyCA, Leaf{Name: FrontProxyClient, CommonName: "front-proxy-client", Client: true}},
	}
	for _, l := range leaves {
		l.leaf.Validity, l.leaf.RenewPercentLeft = req.Validity, req.RenewPercentLeft
		if err := ensureLogged(l.ca, req.Dir, l.leaf); err != nil {
			return files, err
		}
	}
	// Before apiserver.pem served the chain, this file did.
	_ = os.Remove(files.Path(APIServer + "-chain.crt"))
	clients := []Leaf{
		{Name: ControllerManager, CommonName: "system:kube-controller-manager", Client: true},
		{Name: Scheduler, CommonName: "system:kube-scheduler", Client: true},
		{Name: Admin, CommonName: "admin", Organizations: []string{"system:masters"}, Client: true},
	}
	for _, leaf := range clients {
		leaf.Validity, leaf.RenewPercentLeft = req.Validity, req.RenewPercentLeft
		if err := ensureKubeconfig(ca, req.Dir, req.ClusterName, req.LocalURL, leaf, leaf.Name == Admin); err != nil {
			return files, err
		}
	}
	// monokube's own clients act as admin but read the files, like the
	// components do.
	if err := writeFileKubeconfig(files.SelfKubeconfig(), req.ClusterName, req.LocalURL, files, Admin); err != nil {
		return files, err
	}
	return files, nil
}

func ensureLogged(ca *Authority, dir string, leaf Leaf) error {
	reason, err := ca.ensure(dir, leaf)
	if err != nil {
		return fmt.Errorf("certificate %s: %w", leaf.Name, err)
	}
	if reason != "" {
		validity := leaf.Validity
		if validity == 0 {
			validity = DefaultLeafValidity
		}
		klog.InfoS("Issued certificate", "name", leaf.Name, "subject", leaf.CommonName, "reason", reason, "validity", validity)
	}
	return nil
}

// ensureKubeconfig keeps a client certificate in dir and its kubeconfig,
// <dir>/<leaf.Name>.conf, which names the certificate's files unless
// embed: a process's own clients then pick up a renewal by themselves,
// while a kubeconfig for users carries copies and is rewritten on renewal.
func ensureKubeconfig(ca *Authority, dir, clusterName, serverURL string, leaf Leaf, embed bool) error {
	if err := ensureLogged(ca, dir, leaf); err != nil {
		return err
	}
	files := Files{Dir: dir}
	if !embed {
		return writeFileKubeconfig(files.Kubeconfig(leaf.Name), clusterName, serverURL, files, leaf.Name)
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
	return writeIfChanged(files.Kubeconfig(leaf.Name), kubeconfig, 0o600)
}

// writeFileKubeconfig writes at path a kubeconfig naming leaf's files in
// files.Dir and the CA beside them.
func writeFileKubeconfig(path, clusterName, serverURL string, files Files, leaf string) error {
	kubeconfig, err := FileKubeconfig(clusterName, serverURL, files.CACert(), files.Pair(leaf), files.Pair(leaf), leaf)
	if err != nil {
		return err
	}
	return writeIfChanged(path, kubeconfig, 0o600)
}
