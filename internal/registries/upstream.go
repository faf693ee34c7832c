package registries

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/monokube/monokube/internal/config"
)

// upstreams makes and keeps the HTTP transports to registries and mirror
// endpoints: TLS from the host's settings, and go-containerregistry's
// handshake for whatever the registry asks (basic, or a bearer token for
// the repository, anonymous or with the credentials).
type upstreams struct {
	mu         sync.Mutex
	settings   Settings
	transports map[string]http.RoundTripper
}

// reset starts over with new settings: no transport made under the old
// credentials or CA is used again.
func (u *upstreams) reset(s Settings) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.settings = s
	u.transports = map[string]http.RoundTripper{}
}

// transport is the round tripper for pulls of repository from endpoint,
// with the settings of configs[configKey] (the endpoint's host; for a
// registry itself its name, as Docker Hub answers elsewhere).
func (u *upstreams) transport(ctx context.Context, endpoint *url.URL, configKey, repository string) (http.RoundTripper, error) {
	key := endpoint.Scheme + "://" + endpoint.Host + "/" + repository
	u.mu.Lock()
	if t, ok := u.transports[key]; ok {
		u.mu.Unlock()
		return t, nil
	}
	host := u.settings.Hosts[configKey]
	u.mu.Unlock()

	base, err := hostTransport(host)
	if err != nil {
		return nil, fmt.Errorf("registry %s: %w", endpoint.Host, err)
	}
	var options []name.Option
	if endpoint.Scheme == "http" {
		options = append(options, name.Insecure)
	}
	registry, err := name.NewRegistry(endpoint.Host, options...)
	if err != nil {
		return nil, err
	}
	repo, err := name.NewRepository(endpoint.Host+"/"+repository, options...)
	if err != nil {
		return nil, err
	}
	t, err := transport.NewWithContext(ctx, registry, authenticator(host.Auth), base, []string{repo.Scope(transport.PullScope)})
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	u.transports[key] = t
	u.mu.Unlock()
	return t, nil
}

// hostTransport is a transport with host's CA, client certificate and
// verification choice, and timeouts that let the next source be tried
// soon when one does not answer.
func hostTransport(host Host) (*http.Transport, error) {
	tlsConfig := &tls.Config{InsecureSkipVerify: host.InsecureSkipVerify} //nolint:gosec // the operator's explicit choice for this host
	if len(host.CA) > 0 {
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(host.CA) {
			return nil, fmt.Errorf("its CA holds no PEM certificate")
		}
		tlsConfig.RootCAs = pool
	}
	if len(host.Cert) > 0 {
		pair, err := tls.X509KeyPair(host.Cert, host.Key)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tlsConfig.Certificates = []tls.Certificate{pair}
	}
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       tlsConfig,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConnsPerHost:   8,
	}, nil
}

func authenticator(auth *config.RegistryAuth) authn.Authenticator {
	if auth == nil {
		return authn.Anonymous
	}
	config := authn.AuthConfig{Username: auth.Username, Password: auth.Password, IdentityToken: auth.IdentityToken}
	if auth.Auth != "" {
		if decoded, err := base64.StdEncoding.DecodeString(auth.Auth); err == nil {
			config.Username, config.Password, _ = strings.Cut(string(decoded), ":")
		}
	}
	return authn.FromConfig(config)
}
