package bootstrap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/certificate"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/kubeclient"
)

// KubeProxyRotation renews a worker's kube-proxy certificate through the
// cluster while it runs (at 70–90% of its life, as the kubelet does its
// own), asking as the node. kube-proxy's kubeconfig names the store's
// current file, which client-go re-reads.
type KubeProxyRotation struct {
	PKIDir string
	// NodeKubeconfig is the identity that asks: the node's.
	NodeKubeconfig string

	manager certificate.Manager
}

var _ component.Component = (*KubeProxyRotation)(nil)

func (r *KubeProxyRotation) Name() string { return "kube-proxy-certificate" }

func (r *KubeProxyRotation) Init(context.Context) error { return nil }

func (r *KubeProxyRotation) Start(context.Context) error {
	store, err := kubeProxyStore(r.PKIDir)
	if err != nil {
		return err
	}
	client, err := kubeclient.New(r.NodeKubeconfig)
	if err != nil {
		return err
	}
	r.manager, err = certificate.NewManager(&certificate.Config{
		ClientsetFn:      func(*tls.Certificate) (kubernetes.Interface, error) { return client, nil },
		Template:         &x509.CertificateRequest{Subject: pkix.Name{CommonName: join.KubeProxyUser}},
		SignerName:       certificatesv1.KubeAPIServerClientSignerName,
		Usages:           []certificatesv1.KeyUsage{certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth},
		CertificateStore: store,
		Name:             "kube-proxy",
	})
	if err != nil {
		return fmt.Errorf("kube-proxy certificate rotation: %w", err)
	}
	r.manager.Start()
	return nil
}

func (r *KubeProxyRotation) Ready(context.Context) error { return nil }

func (r *KubeProxyRotation) Stop() error {
	if r.manager != nil {
		r.manager.Stop()
	}
	return nil
}
