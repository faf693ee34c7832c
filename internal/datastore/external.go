package datastore

import (
	"context"
	"fmt"
	"os"
	"time"

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
		return fmt.Errorf("spec.storage.etcd.endpoints: etcd at %v does not answer (check the endpoints and spec.storage.tls): %w", x.Endpoints, err)
	}
	klog.InfoS("Datastore ready", "type", "etcd", "external", true, "endpoints", x.Endpoints)
	return nil
}

func (x *External) Client() Client { return Client{Endpoints: x.Endpoints, TLS: x.TLS} }

func (x *External) Stop() error { return nil }
