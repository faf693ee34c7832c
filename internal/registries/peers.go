package registries

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/monokube/monokube/internal/kubeclient"
)

// MirrorPort is where every node's embedded mirror listens, on the node's
// addresses: k3s's embedded registry uses 5001 for its peer traffic too, so
// a firewall opened for k3s works.
const MirrorPort = 5001

// peerLookups bounds the questions asked at once when looking for a peer
// that holds an object.
const peerLookups = 16

// Peers finds the node, among the others the cluster lists as Ready, whose
// mirror holds an object: it asks them all at once (HEAD) and fetches from
// the first that has it, so a cluster of any size costs one round trip and
// needs no gossip.
type Peers struct {
	Self   string
	Nodes  corelisters.NodeLister
	client *http.Client
}

// newPeers is a client that proves this node's identity with the kubelet's
// client certificate (read at each handshake: it rotates) and trusts peers
// whose serving certificate the cluster CA signed for their address.
func newPeers(self string, nodes corelisters.NodeLister, caFile, kubeconfig string) (*Peers, error) {
	pool, err := clusterCAPool(caFile)
	if err != nil {
		return nil, err
	}
	tlsConfig := &tls.Config{
		RootCAs:    pool,
		MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			return nodeClientCertificate(kubeconfig)
		},
	}
	transport := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: 3 * time.Second,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Peers{Self: self, Nodes: nodes, client: &http.Client{Transport: transport}}, nil
}

// nodeClientCertificate is the certificate the kubelet's kubeconfig names
// (a file, rotated in place, or embedded data).
func nodeClientCertificate(kubeconfig string) (*tls.Certificate, error) {
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("node kubeconfig: %w", err)
	}
	var pair tls.Certificate
	if len(config.CertData) > 0 {
		pair, err = tls.X509KeyPair(config.CertData, config.KeyData)
	} else {
		pair, err = tls.LoadX509KeyPair(config.CertFile, config.KeyFile)
	}
	if err != nil {
		return nil, fmt.Errorf("node client certificate: %w", err)
	}
	return &pair, nil
}

// addresses are the mirror addresses of the other Ready nodes.
func (p *Peers) addresses() []string {
	nodes, err := p.Nodes.List(labels.Everything())
	if err != nil {
		return nil
	}
	var addrs []string
	for _, node := range nodes {
		if node.Name == p.Self || !kubeclient.NodeReady(node) {
			continue
		}
		for _, a := range node.Status.Addresses {
			if a.Type == corev1.NodeInternalIP {
				addrs = append(addrs, net.JoinHostPort(a.Address, strconv.Itoa(MirrorPort)))
				break
			}
		}
	}
	return addrs
}

// find answers r (a front request for registry) from the first peer that
// holds the object, or returns nil.
func (p *Peers) find(ctx context.Context, r *http.Request, registry string) *http.Response {
	addrs := p.addresses()
	if len(addrs) == 0 {
		return nil
	}
	lookup, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	found := make(chan string, len(addrs))
	var wg sync.WaitGroup
	slots := make(chan struct{}, peerLookups)
	for _, addr := range addrs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-lookup.Done():
				return
			}
			resp, err := p.do(lookup, http.MethodHead, addr, r, registry)
			if err != nil {
				return
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				found <- addr
			}
		}()
	}
	go func() { wg.Wait(); close(found) }()
	holder, ok := <-found
	cancel()
	if !ok {
		return nil
	}
	resp, err := p.do(ctx, r.Method, holder, r, registry)
	if err != nil || resp.StatusCode >= 300 {
		if resp != nil {
			resp.Body.Close()
		}
		return nil
	}
	return resp
}

func (p *Peers) do(ctx context.Context, method, addr string, r *http.Request, registry string) (*http.Response, error) {
	target := "https://" + addr + r.URL.EscapedPath() + "?ns=" + url.QueryEscape(registry)
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return nil, err
	}
	for _, header := range []string{"Accept", "Range"} {
		if v := r.Header.Values(header); len(v) > 0 {
			req.Header[header] = v
		}
	}
	return p.client.Do(req)
}
