// Package bootstrap is the worker's side of joining: it finds a server that
// holds the token's pinned CA, gets the kubelet's first certificate with the
// node password, keeps kube-proxy's certificate renewed and reads the
// cluster's settings.
package bootstrap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/cert"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/join"
)

// Discover finds a server of the token that proves it holds the pinned CA,
// and returns its URL and that CA. The check happens during the TLS
// handshake, before anything secret is sent. Unreachable servers are
// retried until ctx ends (a server may still be starting); a server with
// the wrong CA fails at once.
func Discover(ctx context.Context, token join.Token) (server string, ca *x509.Certificate, err error) {
	for attempt := 0; ; attempt++ {
		for _, server := range token.Servers {
			ca, err := verifyServer(ctx, server, token)
			if err == nil {
				return server, ca, nil
			}
			var refused *caRefused
			if errors.As(err, &refused) {
				return "", nil, err
			}
			if attempt%5 == 0 {
				klog.InfoS("Waiting for a server to answer", "server", server, "reason", err.Error())
			}
		}
		select {
		case <-ctx.Done():
			return "", nil, fmt.Errorf("no server of the token answered (%v): %w", token.Servers, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

// ErrCARotated refuses a token made before the cluster's CA rotated: the
// server still shows the CA the token pins, but no longer uses it.
var ErrCARotated = errors.New("the cluster's CA rotated after this token was made (CA rotated): create a new one on a server with `monokube token create`")

// caRefused is a server that answered with a CA other than the pinned one.
type caRefused struct{ err error }

func (c *caRefused) Error() string { return c.err.Error() }
func (c *caRefused) Unwrap() error { return c.err }

func verifyServer(ctx context.Context, server string, token join.Token) (*x509.Certificate, error) {
	u, err := url.Parse(server)
	if err != nil {
		return nil, err
	}
	var ca *x509.Certificate
	var refusal error
	config := &tls.Config{
		// Verified below against the pin instead of a system root.
		InsecureSkipVerify: true,
		VerifyConnection: func(state tls.ConnectionState) error {
			ca, refusal = pinnedCA(state.PeerCertificates, u.Hostname(), token)
			return refusal
		},
	}
	dialer := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: config}
	conn, err := dialer.DialContext(ctx, "tcp", u.Host)
	if refusal != nil {
		return nil, &caRefused{fmt.Errorf("server %s: %w", server, refusal)}
	}
	if err != nil {
		return nil, err
	}
	conn.Close()
	return ca, nil
}

// pinnedCA picks the presented CA the token pins and checks the server's
// certificate against it and the address dialled.
func pinnedCA(chain []*x509.Certificate, host string, token join.Token) (*x509.Certificate, error) {
	if len(chain) < 2 {
		return nil, errors.New("it does not present its CA certificate, so the token's CA pin cannot be checked (is it a monokube server?)")
	}
	var ca *x509.Certificate
	for _, candidate := range chain[1:] {
		if token.VerifyCA(candidate) == nil {
			ca = candidate
		}
	}
	if ca == nil {
		return nil, token.VerifyCA(chain[len(chain)-1])
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	if chain[0].CheckSignatureFrom(ca) != nil {
		// Servers present the CAs a rotation dropped after their own.
		return nil, ErrCARotated
	}
	if _, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
		return nil, fmt.Errorf("its certificate is not valid for %s under the pinned CA: %w", host, err)
	}
	return ca, nil
}

// TokenClient talks to server as the token's bootstrap identity, trusting
// only the CA that Discover checked against the pin. It also returns that
// CA as PEM, for callers that keep it.
func TokenClient(server string, ca *x509.Certificate, token join.Token) (kubernetes.Interface, []byte, error) {
	caPEM := pem.EncodeToMemory(&pem.Block{Type: cert.CertificateBlockType, Bytes: ca.Raw})
	client, err := kubernetes.NewForConfig(&rest.Config{Host: server, BearerToken: token.Bootstrap, Timeout: 10 * time.Second,
		TLSClientConfig: rest.TLSClientConfig{CAData: caPEM}})
	return client, caPEM, err
}
