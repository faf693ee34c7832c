// Package worker assembles the worker role: a node that joined a remote
// server with a token and runs containerd, the kubelet, kube-proxy and the
// pod network against it.
package worker

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/node"
	"github.com/monokube/monokube/internal/version"
)

// Worker is one worker node for one data dir.
type Worker struct {
	DataDir string
	// Token is the printed join token; empty on restarts.
	Token      string
	NodeName   string
	NodeIP     string // empty: the address this machine reaches the server from
	CgroupRoot string
	// Labels and Taints the Node registers with.
	Labels map[string]string
	Taints []corev1.Taint
}

// Run joins (when needed), starts the node and blocks until ctx ends or a
// component fails. A refused token is an error before anything starts.
func (w *Worker) Run(ctx context.Context) error {
	began := time.Now()
	klog.InfoS("Starting monokube worker", "version", version.Version, "kubernetes", version.Kubernetes(), "dataDir", w.DataDir, "node", w.NodeName)
	if err := os.MkdirAll(w.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	release, err := datadir.Lock(w.DataDir)
	if err != nil {
		return err
	}
	defer release()

	paths := node.NewPaths(w.DataDir)
	creds, err := join.EnsureWorkerCredentials(ctx, join.WorkerRequest{
		PKIDir:         paths.Agent("pki"),
		KubeletCertDir: filepath.Join(paths.KubeletRoot(), "pki"),
		Token:          w.Token,
		NodeName:       w.NodeName,
	})
	if err != nil {
		return err
	}
	settings, err := w.clusterSettings(ctx, paths, creds)
	if err != nil {
		return err
	}
	nodeIP := w.NodeIP
	if nodeIP == "" {
		if nodeIP, err = sourceAddress(creds.Server); err != nil {
			return err
		}
	}
	setup := settings.NodeSetup()
	setup.Paths, setup.NodeName, setup.NodeIP, setup.CgroupRoot = paths, w.NodeName, nodeIP, w.CgroupRoot
	setup.Labels, setup.Taints = w.Labels, w.Taints
	setup.KubeletKubeconfig, setup.KubeProxyKubeconfig, setup.CAFile = creds.KubeletKubeconfig, creds.KubeProxyKubeconfig, creds.CAFile
	components, err := node.Components(setup)
	if err != nil {
		return err
	}
	components = append(components, &join.KubeProxyRotation{PKIDir: paths.Agent("pki"), NodeKubeconfig: creds.KubeletKubeconfig})
	return component.NewManager(components...).Run(ctx, func() {
		klog.InfoS("monokube worker is ready", "took", time.Since(began).Round(time.Millisecond), "server", creds.Server, "node", w.NodeName)
	})
}

// clusterSettings reads the cluster's settings as this node, keeping a copy
// for starts while the server is away.
func (w *Worker) clusterSettings(ctx context.Context, paths node.Paths, creds join.WorkerCredentials) (join.ClusterSettings, error) {
	cache := paths.Agent("cluster.json")
	client, err := node.ClientFor(creds.KubeletKubeconfig)
	if err != nil {
		return join.ClusterSettings{}, err
	}
	var settings join.ClusterSettings
	err = wait.PollUntilContextTimeout(ctx, time.Second, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		settings, err = join.FetchClusterSettings(ctx, client)
		return err == nil, nil
	})
	if err == nil {
		return settings, join.SaveClusterSettings(cache, settings)
	}
	if cached, cacheErr := join.LoadClusterSettings(cache); cacheErr == nil {
		klog.InfoS("Server unreachable; using the cluster settings saved at the last start", "reason", err.Error())
		return cached, nil
	}
	return settings, fmt.Errorf("read cluster settings from the server: %w", err)
}

// sourceAddress is the local address this machine uses to reach server:
// the node's address, as the server and other nodes see it.
func sourceAddress(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil {
		return "", fmt.Errorf("server URL %q: %w", server, err)
	}
	// UDP "connects" only pick a route; nothing is sent.
	conn, err := net.Dial("udp", u.Host)
	if err != nil {
		return "", fmt.Errorf("no route to the server %s (set --node-ip): %w", server, err)
	}
	defer conn.Close()
	return conn.LocalAddr().(*net.UDPAddr).IP.String(), nil
}
