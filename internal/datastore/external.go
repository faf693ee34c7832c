package datastore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/config"
)

// External is an etcd cluster run by someone else. Start checks that it
// answers, so a wrong endpoint or certificate is reported at start, naming
// the setting, instead of as the API server's retries.
type External struct {
	Endpoints []string
	TLS       config.StorageTLS
}

var _ Datastore = (*External)(nil)

func (x *External) Name() string { return "datastore" }

func (x *External) Init(context.Context) error {
	for field, path := range map[string]string{"caFile": x.TLS.CAFile, "certFile": x.TLS.CertFile, "keyFile": x.TLS.KeyFile} {
		if path == "" {
			continue
		}
		if _, err := os.Stat(path); err != nil {
			return fmt.Errorf("spec.storage.tls.%s: %w", field, err)
		}
	}
	return nil
}

func (x *External) Start(context.Context) error { return nil }

func (x *External) Ready(ctx context.Context) error {
	client, err := NewEtcdClient(x.Endpoints, x.TLS)
	if err != nil {
		return fmt.Errorf("spec.storage.etcd.endpoints: %w", err)
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := client.MemberList(ctx); err != nil {
		if cause := tlsProblem(x.Endpoints[0], x.TLS); cause != nil {
			err = cause
		}
		return fmt.Errorf("spec.storage.etcd.endpoints: etcd at %v does not answer (check the endpoints and spec.storage.tls): %w", x.Endpoints, err)
	}
	klog.InfoS("Datastore ready", "type", "etcd", "external", true, "endpoints", x.Endpoints)
	return nil
}

func (x *External) Client() Client { return Client{Endpoints: x.Endpoints, TLS: x.TLS} }

func (x *External) Stop() error { return nil }

// tlsProblem names what gRPC hides behind a deadline: a handshake that
// fails, or a client certificate etcd refuses (reported by its first read).
func tlsProblem(endpoint string, files config.StorageTLS) error {
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "https" {
		return nil
	}
	info := transport.TLSInfo{CertFile: files.CertFile, KeyFile: files.KeyFile, TrustedCAFile: files.CAFile}
	tlsConfig, err := info.ClientConfig()
	if err != nil {
		return fmt.Errorf("spec.storage.tls: %w", err)
	}
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", u.Host, tlsConfig)
	if err != nil {
		return fmt.Errorf("TLS: %w", err)
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(time.Second))
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		var netErr net.Error
		if errors.As(err, &netErr) && netErr.Timeout() {
			return nil // etcd waits for us: TLS is fine
		}
		return fmt.Errorf("TLS: %w", err)
	}
	return nil
}
