// Package kubeclient builds Kubernetes clients from kubeconfig files, the
// one way monokube's own code talks to an API server.
package kubeclient

import (
	"fmt"
	"os"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Option adjusts the client configuration (rate limits, timeouts).
type Option func(*rest.Config)

// WithRate lifts client-go's default 5 requests/s for bursts at start.
func WithRate(qps float32, burst int) Option {
	return func(c *rest.Config) { c.QPS, c.Burst = qps, burst }
}

// Config is the client configuration in the kubeconfig file at path, for
// clients other than the typed one (dynamic, discovery).
func Config(path string, opts ...Option) (*rest.Config, error) {
	restConfig, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	for _, opt := range opts {
		opt(restConfig)
	}
	return restConfig, nil
}

// New is a client for the kubeconfig file at path.
func New(path string, opts ...Option) (kubernetes.Interface, error) {
	restConfig, err := Config(path, opts...)
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return nil, fmt.Errorf("client for %s: %w", path, err)
	}
	return client, nil
}

// WithTimeout bounds every request, for commands a user waits on.
func WithTimeout(timeout time.Duration) Option {
	return func(c *rest.Config) { c.Timeout = timeout }
}

// WithFilesReadNow reads the kubeconfig's CA and certificate files now,
// into the client: client-go otherwise shares one transport per file path
// within a process and re-reads the files only every few minutes, while a
// command that lives through a CA rotation needs them as they are at each
// call.
func WithFilesReadNow() Option {
	return func(c *rest.Config) {
		for _, f := range []struct {
			path *string
			data *[]byte
		}{{&c.CAFile, &c.CAData}, {&c.CertFile, &c.CertData}, {&c.KeyFile, &c.KeyData}} {
			if *f.path == "" {
				continue
			}
			if data, err := os.ReadFile(*f.path); err == nil {
				*f.data, *f.path = data, ""
			}
		}
	}
}
