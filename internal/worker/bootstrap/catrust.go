package bootstrap

import (
	"bytes"
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/certificate"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/carotation"
	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/kubeclient"
)

// CATrust is a worker's part of a CA rotation (see the carotation
// package): it makes the node trust the CAs of the cluster's stage and,
// once the new CA signs, gets the node's certificates signed by it; then
// it restarts the worker, because the kubelet reads the CA it trusts the
// API server with only at start. Pods keep running across the restart.
type CATrust struct {
	Request        WorkerRequest
	Credentials    WorkerCredentials
	NodeKubeconfig string

	component.Task
}

var _ component.Component = (*CATrust)(nil)

func (t *CATrust) Name() string { return "ca-trust" }

func (t *CATrust) Init(context.Context) error { return nil }

func (t *CATrust) Start(ctx context.Context) error {
	client, err := kubeclient.New(t.NodeKubeconfig)
	if err != nil {
		return err
	}
	// Also now and then, to retry what failed.
	t.Go(ctx, func(ctx context.Context) error {
		return kubeclient.OnConfigMapChange(ctx, client, metav1.NamespaceSystem, carotation.BundleConfigMap, time.Minute, func(ctx context.Context) error {
			err := t.sync(ctx, client)
			if errors.Is(err, component.ErrRestart) {
				return err
			}
			if err != nil {
				klog.V(2).InfoS("CA trust not in sync yet", "reason", err.Error())
			}
			return nil
		})
	})
	return nil
}

func (t *CATrust) Ready(context.Context) error { return nil }

func (t *CATrust) Stop() error { return t.Task.Stop(5 * time.Second) }

func (t *CATrust) sync(ctx context.Context, client kubernetes.Interface) error {
	bundle, found, err := carotation.ReadBundle(ctx, client)
	if err != nil || !found {
		return err
	}
	var changed []string
	current, _ := os.ReadFile(t.Credentials.CAFile)
	if !bytes.Equal(current, bundle.CA) {
		if err := os.WriteFile(t.Credentials.CAFile+".tmp", bundle.CA, caFileMode); err != nil {
			return err
		}
		if err := os.Rename(t.Credentials.CAFile+".tmp", t.Credentials.CAFile); err != nil {
			return err
		}
		changed = append(changed, "trusted CAs")
	}
	if bundle.Stage != carotation.StageTrusted {
		renewed, err := t.renewUnder(ctx, client, bundle.Signer())
		if err != nil {
			return err
		}
		changed = append(changed, renewed...)
	}
	if len(changed) > 0 {
		klog.InfoS("CA rotation: this node applied the stage; restarting to load it (pods keep running)",
			"stage", bundle.Stage, "generation", bundle.Generation, "changed", changed)
		return component.ErrRestart
	}
	return carotation.Annotate(ctx, client, t.Request.NodeName, bundle.Generation)
}

// renewUnder gets the node's client certificates signed by the new CA
// (asking with the current ones, which the servers still trust) and drops
// a serving certificate the old CA signed: the kubelet asks for a new one
// when it starts.
func (t *CATrust) renewUnder(ctx context.Context, client kubernetes.Interface, signerPEM []byte) ([]string, error) {
	signers, err := cert.ParseCertsPEM(signerPEM)
	if err != nil {
		return nil, fmt.Errorf("the stage's signing CA: %w", err)
	}
	signer := signers[0]
	var renewed []string
	kubelet, err := certificate.NewFileStore("kubelet-client", t.Request.KubeletCertDir, t.Request.KubeletCertDir, "", "")
	if err != nil {
		return nil, err
	}
	kubeProxy, err := kubeProxyStore(t.Request.PKIDir)
	if err != nil {
		return nil, err
	}
	stores := []struct {
		store   certificate.FileStore
		subject pkix.Name
		signer  string
	}{
		{kubelet, pkix.Name{CommonName: join.NodeUserPrefix + t.Request.NodeName, Organization: []string{"system:nodes"}}, certificatesv1.KubeAPIServerClientKubeletSignerName},
		{kubeProxy, pkix.Name{CommonName: join.KubeProxyUser}, certificatesv1.KubeAPIServerClientSignerName},
	}
	for _, s := range stores {
		if current, err := s.store.Current(); err == nil && current.Leaf != nil && signedBy(current.Leaf, signer) {
			continue
		}
		key, err := keyutil.MakeEllipticPrivateKeyPEM()
		if err != nil {
			return nil, err
		}
		certPEM, err := requestCertificate(ctx, client, key, s.subject, s.signer)
		if err != nil {
			return nil, fmt.Errorf("certificate for %s under the new CA: %w", s.subject.CommonName, err)
		}
		if _, err := s.store.Update(certPEM, key); err != nil {
			return nil, err
		}
		renewed = append(renewed, s.subject.CommonName)
	}
	serving := filepath.Join(t.Request.KubeletCertDir, "kubelet-server-current.pem")
	if certs, err := cert.CertsFromFile(serving); err == nil && !signedBy(certs[0], signer) {
		if err := os.Remove(serving); err != nil {
			return nil, err
		}
		renewed = append(renewed, "kubelet serving certificate")
	}
	return renewed, nil
}

func signedBy(c, ca *x509.Certificate) bool { return c.CheckSignatureFrom(ca) == nil }
