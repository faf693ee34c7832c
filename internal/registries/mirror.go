package registries

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/errdefs"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"k8s.io/klog/v2"
)

// Mirror serves the images this node's containerd holds to the other
// nodes, read-only, over the registry API: a manifest by tag (the image
// store's name) or digest, a blob by digest. Only nodes may ask: a client
// certificate the cluster CA signed for the group system:nodes; anything
// else gets 401. Pullers check every digest, so a peer cannot hand out
// other bytes than the manifest names.
type Mirror struct {
	client   *containerd.Client
	listener net.Listener
	server   *http.Server
}

// newMirror listens on MirrorPort on every address, with servingPair (a
// file holding the node's serving certificate and key, read at each
// handshake: the kubelet rotates it) and the cluster CA for clients.
func newMirror(client *containerd.Client, caFile, servingCert, servingKey string) (*Mirror, error) {
	pool, err := clusterCAPool(caFile)
	if err != nil {
		return nil, err
	}
	tlsConfig := &tls.Config{
		MinVersion: tls.VersionTLS12,
		ClientCAs:  pool,
		// Verified when given; a request without one gets a 401, which
		// says more than a failed handshake.
		ClientAuth: tls.VerifyClientCertIfGiven,
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			pair, err := tls.LoadX509KeyPair(servingCert, servingKey)
			if err != nil {
				return nil, fmt.Errorf("node serving certificate: %w", err)
			}
			return &pair, nil
		},
	}
	listener, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(MirrorPort)))
	if err != nil {
		return nil, fmt.Errorf("embedded mirror: %w", err)
	}
	m := &Mirror{client: client, listener: tls.NewListener(listener, tlsConfig)}
	m.server = &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second}
	return m, nil
}

func (m *Mirror) serve() error {
	if err := m.server.Serve(m.listener); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (m *Mirror) close() error { return m.server.Close() }

// clusterCAPool is the cluster CA that signs every node's certificates.
func clusterCAPool(caFile string) (*x509.CertPool, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("cluster CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return nil, fmt.Errorf("cluster CA %s holds no certificate", caFile)
	}
	return pool, nil
}

// isNode reports a client certificate of a node, verified against the CA.
func isNode(r *http.Request) bool {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 {
		return false
	}
	leaf := r.TLS.VerifiedChains[0][0]
	return slices.Contains(leaf.Subject.Organization, "system:nodes") && strings.HasPrefix(leaf.Subject.CommonName, "system:node:")
}

func (m *Mirror) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !isNode(r) {
		w.Header().Set("WWW-Authenticate", `Basic realm="monokube node certificate required"`)
		http.Error(w, "a node client certificate is required", http.StatusUnauthorized)
		return
	}
	o, registry, ok := readRequest(w, r)
	if !ok {
		return
	}
	desc, err := m.describe(r.Context(), registry, o)
	if errdefs.IsNotFound(err) {
		http.Error(w, "not here", http.StatusNotFound)
		return
	}
	if err != nil {
		klog.InfoS("Embedded mirror could not answer", "registry", registry, "repository", o.repository, "reference", o.reference, "err", err)
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	reader, err := m.client.ContentStore().ReaderAt(r.Context(), desc)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	defer reader.Close()
	w.Header().Set("Docker-Content-Digest", desc.Digest.String())
	w.Header().Set("Content-Type", desc.MediaType)
	w.Header().Set("Content-Length", strconv.FormatInt(desc.Size, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = io.Copy(w, io.NewSectionReader(reader, 0, desc.Size))
	}
}

// describe finds the object: a tag through the image store, a digest in the
// content store (a manifest's media type read from its own bytes, as the
// content store keeps none).
func (m *Mirror) describe(ctx context.Context, registry string, o object) (ocispec.Descriptor, error) {
	if o.kind == "manifests" && !strings.Contains(o.reference, ":") {
		image, err := m.client.ImageService().Get(ctx, registry+"/"+o.repository+":"+o.reference)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		return image.Target, nil
	}
	dgst, err := digest.Parse(o.reference)
	if err != nil {
		return ocispec.Descriptor{}, errdefs.ErrNotFound
	}
	info, err := m.client.ContentStore().Info(ctx, dgst)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	desc := ocispec.Descriptor{Digest: dgst, Size: info.Size, MediaType: "application/octet-stream"}
	if o.kind == "manifests" {
		if info.Size > 4<<20 {
			return ocispec.Descriptor{}, errdefs.ErrNotFound
		}
		raw, err := content.ReadBlob(ctx, m.client.ContentStore(), desc)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		desc.MediaType = manifestMediaType(raw)
	}
	return desc, nil
}

// manifestMediaType is a manifest's own mediaType field, or what its shape
// says when it has none (OCI makes the field optional).
func manifestMediaType(raw []byte) string {
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests json.RawMessage   `json:"manifests"`
		Layers    []json.RawMessage `json:"layers"`
	}
	if json.Unmarshal(raw, &probe) != nil {
		return "application/octet-stream"
	}
	switch {
	case probe.MediaType != "":
		return probe.MediaType
	case probe.Manifests != nil:
		return ocispec.MediaTypeImageIndex
	default:
		return ocispec.MediaTypeImageManifest
	}
}
