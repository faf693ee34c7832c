package bootstrap

import (
	"context"
	"crypto"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/certificate/csr"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/kubeclient"
	"github.com/monokube/monokube/internal/pki"
)

// decisionTimeout bounds the wait for the server's approver.
const decisionTimeout = 60 * time.Second

// WorkerRequest is what a worker needs to (re)gain its credentials.
type WorkerRequest struct {
	// PKIDir keeps the CA, the node password and kube-proxy's credentials.
	PKIDir string
	// KubeletCertDir is the kubelet's certificate dir; the kubelet rotates
	// its client certificate there.
	KubeletCertDir string
	// Token is the printed join token; only needed without valid credentials.
	Token    string
	NodeName string
	// APIURL is what the node's kubeconfigs point at (its API load
	// balancer); empty means the server the join used.
	APIURL string
}

// WorkerCredentials are the files a worker's components use.
type WorkerCredentials struct {
	Server              string
	CAFile              string
	KubeletKubeconfig   string
	KubeProxyKubeconfig string
}

// ErrTokenRefused is wrapped when the cluster does not accept the token.
// caFileMode keeps the cluster CA the kubelet trusts writable and
// readable by root alone, as CIS 4.1.7 asks (only the node's components,
// as root, read it).
const caFileMode = 0o600

var ErrTokenRefused = errors.New("the cluster refused the join token")

// EnsureWorkerCredentials keeps a worker's credentials: with a valid kubelet
// client certificate in the data dir it needs no token; otherwise it joins
// with the token (discovery, then a certificate request signed with the
// node password). kube-proxy's certificate is requested as the node.
func EnsureWorkerCredentials(ctx context.Context, req WorkerRequest) (WorkerCredentials, error) {
	creds := WorkerCredentials{
		CAFile:              filepath.Join(req.PKIDir, "ca.crt"),
		KubeletKubeconfig:   filepath.Join(req.PKIDir, "kubelet.conf"),
		KubeProxyKubeconfig: filepath.Join(req.PKIDir, pki.KubeProxy+".conf"),
	}
	for _, dir := range []string{req.PKIDir, req.KubeletCertDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return creds, fmt.Errorf("create %s: %w", dir, err)
		}
	}
	store, err := certificate.NewFileStore("kubelet-client", req.KubeletCertDir, req.KubeletCertDir, "", "")
	if err != nil {
		return creds, fmt.Errorf("kubelet certificate store: %w", err)
	}
	if server, ok := validKubeletCredentials(creds.KubeletKubeconfig, store); ok {
		creds.Server = server
		klog.InfoS("Using the credentials in the data dir; no join token needed", "server", server)
		if req.APIURL != "" && server != req.APIURL {
			// A data dir from before the load balancer: its kubeconfigs
			// named one server.
			for _, path := range []string{creds.KubeletKubeconfig, creds.KubeProxyKubeconfig} {
				if err := pointAt(path, req.APIURL); err != nil {
					return creds, err
				}
			}
			creds.Server = req.APIURL
		}
	} else {
		if creds.Server, err = bootstrapKubelet(ctx, req, creds, store); err != nil {
			return creds, err
		}
	}
	// Data dirs joined before the CA file was private keep theirs 0644.
	if err := os.Chmod(creds.CAFile, caFileMode); err != nil {
		return creds, fmt.Errorf("restrict the cluster CA file: %w", err)
	}
	// The node's clients read the certificates the cluster rotates (at
	// 70-90% of their life) from files; they re-read them well within the
	// last tenth, before the first client is built.
	if current, err := store.Current(); err == nil && current.Leaf != nil {
		pki.ReloadEvery(pki.CheckInterval(current.Leaf.NotAfter.Sub(current.Leaf.NotBefore), 10))
	}
	nodeClient, err := kubeclient.New(creds.KubeletKubeconfig)
	if err != nil {
		return creds, err
	}
	if err := ensureKubeProxyCredentials(ctx, nodeClient, req, creds); err != nil {
		return creds, err
	}
	return creds, nil
}

// validKubeletCredentials reports whether the kubelet's kubeconfig exists
// and its client certificate has not expired.
func validKubeletCredentials(kubeconfig string, store certificate.FileStore) (server string, ok bool) {
	server, err := KubeconfigServer(kubeconfig)
	if err != nil {
		return "", false
	}
	current, err := store.Current()
	if err != nil || current.Leaf == nil || time.Now().After(current.Leaf.NotAfter) {
		return "", false
	}
	return server, true
}

// ParseToken reads a worker's join token and refuses one that cannot
// work whatever the server says: garbled, or expired.
func ParseToken(text string) (join.Token, error) {
	token, err := join.Parse(text)
	if err != nil {
		return join.Token{}, err
	}
	if token.Expired(time.Now()) {
		return join.Token{}, fmt.Errorf("%w: it expired at %s; create a new one on a server with `monokube token create --role=worker`",
			ErrTokenRefused, token.Expires.Format(time.RFC3339))
	}
	return token, nil
}

// bootstrapKubelet joins with the token and returns the server it used.
func bootstrapKubelet(ctx context.Context, req WorkerRequest, creds WorkerCredentials, store certificate.FileStore) (string, error) {
	if req.Token == "" {
		return "", errors.New("this worker has no valid credentials in its data dir (first join, or its certificate expired): pass a join token (create one on a server with `monokube token create --role=worker`)")
	}
	token, err := ParseToken(req.Token)
	if err != nil {
		return "", err
	}
	klog.InfoS("Joining the cluster", "servers", token.Servers, "node", req.NodeName)
	server, ca, err := Discover(ctx, token)
	if err != nil {
		return "", err
	}
	client, caPEM, err := TokenClient(server, ca, token)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(creds.CAFile, caPEM, caFileMode); err != nil {
		return "", fmt.Errorf("save cluster CA: %w", err)
	}
	klog.InfoS("Server verified against the token's CA pin", "server", server)
	keyPEM, _, err := keyutil.LoadOrGenerateKeyFile(filepath.Join(req.PKIDir, "node-password.key"))
	if err != nil {
		return "", fmt.Errorf("node password: %w", err)
	}
	subject := pkix.Name{CommonName: join.NodeUserPrefix + req.NodeName, Organization: []string{"system:nodes"}}
	certPEM, err := requestCertificate(ctx, client, keyPEM, subject, certificatesv1.KubeAPIServerClientKubeletSignerName)
	if err != nil {
		return "", fmt.Errorf("kubelet client certificate: %w", err)
	}
	if _, err := store.Update(certPEM, keyPEM); err != nil {
		return "", fmt.Errorf("save kubelet certificate: %w", err)
	}
	if req.APIURL != "" {
		server = req.APIURL
	}
	if err := writeFileKubeconfig(creds.KubeletKubeconfig, server, creds.CAFile, "kubelet", store.CurrentPath()); err != nil {
		return "", err
	}
	klog.InfoS("Joined: kubelet client certificate issued", "node", req.NodeName)
	return server, nil
}

// requestCertificate asks the cluster to sign a certificate for keyPEM and
// waits for the decision; a denial's message is the user's explanation.
func requestCertificate(ctx context.Context, client kubernetes.Interface, keyPEM []byte, subject pkix.Name, signer string) ([]byte, error) {
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	request, err := cert.MakeCSR(key, &subject, nil, nil)
	if err != nil {
		return nil, fmt.Errorf("make certificate request: %w", err)
	}
	usages := []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth}
	name, uid, err := csr.RequestCertificateWithContext(ctx, client, request, "", signer, nil, usages, key.(crypto.Signer))
	switch {
	case apierrors.IsUnauthorized(err):
		return nil, fmt.Errorf("%w: it was invalidated (`monokube token invalidate`) or has expired; create a new one on a server with `monokube token create --role=worker`", ErrTokenRefused)
	case apierrors.IsForbidden(err):
		return nil, fmt.Errorf("%w: it may not request node certificates (is it a worker token?): %v", ErrTokenRefused, err)
	case err != nil:
		return nil, fmt.Errorf("send certificate request: %w", err)
	}
	klog.InfoS("Certificate requested; waiting for the server's approval", "csr", name, "subject", subject.CommonName)
	waitCtx, cancel := context.WithTimeout(ctx, decisionTimeout)
	defer cancel()
	certPEM, err := csr.WaitForCertificate(waitCtx, client, name, uid)
	if waitCtx.Err() != nil && ctx.Err() == nil {
		return nil, fmt.Errorf("the server did not decide certificate request %s within %s (is its join controller running?)", name, decisionTimeout)
	}
	if err != nil {
		if reason := denial(ctx, client, name); reason != "" {
			return nil, fmt.Errorf("the server refused this node: %s", reason)
		}
		return nil, fmt.Errorf("waiting for certificate request %s: %w", name, err)
	}
	return certPEM, nil
}

// denial is the approver's reason when it denied request name.
func denial(ctx context.Context, client kubernetes.Interface, name string) string {
	request, err := client.CertificatesV1().CertificateSigningRequests().Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return ""
	}
	for _, condition := range request.Status.Conditions {
		if condition.Type == certificatesv1.CertificateDenied {
			return condition.Message
		}
	}
	return ""
}

// writeFileKubeconfig writes a kubeconfig that names its credential files
// instead of embedding them: client-go re-reads them, so a rotated
// certificate is used without a restart.
func writeFileKubeconfig(path, server, caFile, user, pemPath string) error {
	kubeconfig, err := pki.FileKubeconfig("monokube", server, caFile, pemPath, pemPath, user)
	if err != nil {
		return err
	}
	return pki.WriteKubeconfig(path, kubeconfig)
}

// ensureKubeProxyCredentials keeps kube-proxy's certificate in a store the
// running worker rotates (KubeProxyRotation), renewing it here first when
// too little of its lifetime is left.
func ensureKubeProxyCredentials(ctx context.Context, nodeClient kubernetes.Interface, req WorkerRequest, creds WorkerCredentials) error {
	store, err := kubeProxyStore(req.PKIDir)
	if err != nil {
		return err
	}
	if current, err := store.Current(); err == nil && current.Leaf != nil && pki.EnoughLifeLeft(current.Leaf, pki.DefaultRenewPercentLeft) &&
		fileExists(creds.KubeProxyKubeconfig) {
		return nil
	}
	key, err := keyutil.MakeEllipticPrivateKeyPEM()
	if err != nil {
		return err
	}
	certPEM, err := requestCertificate(ctx, nodeClient, key, pkix.Name{CommonName: join.KubeProxyUser}, certificatesv1.KubeAPIServerClientSignerName)
	if err != nil {
		return fmt.Errorf("kube-proxy certificate: %w", err)
	}
	if _, err := store.Update(certPEM, key); err != nil {
		return fmt.Errorf("save kube-proxy certificate: %w", err)
	}
	server, err := KubeconfigServer(creds.KubeletKubeconfig)
	if err != nil {
		return err
	}
	klog.InfoS("kube-proxy certificate issued")
	return writeFileKubeconfig(creds.KubeProxyKubeconfig, server, creds.CAFile, pki.KubeProxy, store.CurrentPath())
}

// kubeProxyStore keeps kube-proxy-current.pem (certificate and key) and its
// predecessors in the worker's PKI dir.
func kubeProxyStore(dir string) (certificate.FileStore, error) {
	store, err := certificate.NewFileStore(pki.KubeProxy, dir, dir, "", "")
	if err != nil {
		return nil, fmt.Errorf("kube-proxy certificate store: %w", err)
	}
	return store, nil
}

// pointAt makes a kubeconfig (if it exists) name another server URL.
func pointAt(path, server string) error {
	config, err := clientcmd.LoadFromFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	for _, cluster := range config.Clusters {
		cluster.Server = server
	}
	if err := clientcmd.WriteToFile(*config, path); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	return nil
}

// KubeconfigServer reads which server a kubeconfig points at.
func KubeconfigServer(path string) (string, error) {
	config, err := clientcmd.LoadFromFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	for _, cluster := range config.Clusters {
		return cluster.Server, nil
	}
	return "", fmt.Errorf("%s names no server", path)
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
