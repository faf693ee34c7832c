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
	"slices"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/kubeclient"
	"github.com/monokube/monokube/internal/node"
	"github.com/monokube/monokube/internal/registries"
	"github.com/monokube/monokube/internal/service"
	"github.com/monokube/monokube/internal/sysinfo"
	"github.com/monokube/monokube/internal/version"
	"github.com/monokube/monokube/internal/worker/bootstrap"
)

// Worker is one worker node for one data dir.
type Worker struct {
	// OnReady, when set, is called once the worker is ready.
	OnReady func()
	Layout  datadir.Layout
	// Token is the printed join token; empty on restarts.
	Token    string
	Identity node.Identity
	NodeIPs  []string // empty: the address this machine reaches the server from
	// RegistriesFile (--private-registry) is this machine's registries.yaml,
	// over the cluster's registry settings.
	RegistriesFile string
}

// Run joins (when needed), starts the node and blocks until ctx ends or a
// component fails. A refused token is an error before anything starts.
func (w *Worker) Run(ctx context.Context) error {
	began := time.Now()
	klog.InfoS("Starting monokube worker", "version", version.Version, "kubernetes", version.Kubernetes(), "dataDir", w.Layout.Dir, "node", w.Identity.Name)
	// A token that cannot work is refused before the data dir is touched.
	if w.Token != "" {
		if _, err := bootstrap.ParseToken(w.Token); err != nil {
			return err
		}
	}
	// What the data dir held before, so a first join that fails takes back
	// what it wrote (and only that: an images dir put there stays).
	before, err := w.Layout.StateEntries()
	if err != nil {
		return err
	}
	_, statErr := os.Stat(w.Layout.AgentPKIDir())
	firstJoin := os.IsNotExist(statErr)
	// The cluster's settings (network policies, proxy mode) are not known
	// yet: the checks take the defaults, which need the most.
	spec := config.Default().Spec
	spec.Worker.CgroupRoot = w.Identity.CgroupRoot
	if err := sysinfo.Preflight(sysinfo.For(spec, w.Layout.Dir, false, true)); err != nil {
		return err
	}
	// A bad registries file is refused before the data dir is touched
	// (the node reads it again at start, and whenever it changes).
	if _, err := config.LoadRegistries(w.RegistriesFile); err != nil {
		return err
	}
	release, err := w.Layout.Claim()
	if err != nil {
		return err
	}
	defer release()

	lb, err := w.startBalancer(ctx)
	if err != nil {
		return err
	}
	// The balancer process stays for the next start, unless this was a
	// first join that failed: then nothing will start here again.
	defer lb.Close()
	request := bootstrap.WorkerRequest{
		PKIDir:         w.Layout.AgentPKIDir(),
		KubeletCertDir: w.Layout.KubeletPKIDir(),
		Token:          w.Token,
		NodeName:       w.Identity.Name,
		APIURL:         lb.URL(),
	}
	creds, err := bootstrap.EnsureWorkerCredentials(ctx, request)
	if err != nil {
		if firstJoin {
			lb.Shutdown()
			w.undoFirstJoin(before)
		}
		return err
	}
	// kube-proxy's identity may read the kubernetes EndpointSlices; the
	// node's may not.
	if err := w.followServers(ctx, lb, creds.KubeProxyKubeconfig); err != nil {
		return err
	}
	settings, err := w.clusterSettings(ctx, creds)
	if err != nil {
		return err
	}
	if settings.Profile == config.ProfileCIS {
		// Known only now: the cluster's profile hardens this kubelet, which
		// then needs the kernel as it protects it.
		if err := sysinfo.CheckKernelDefaults(); err != nil {
			return err
		}
	}
	registrySettings, err := w.registrySettings(ctx, creds)
	if err != nil {
		return err
	}
	given := w.NodeIPs
	if len(given) == 0 {
		source, err := sourceAddress("https://" + lb.Servers()[0])
		if err != nil {
			return err
		}
		given = []string{source}
	}
	nodeIPs, err := node.Addresses(settings.Network, given)
	if err != nil {
		return err
	}
	parts, err := node.Components(node.Setup{
		Layout:              w.Layout,
		Identity:            w.Identity,
		NodeIPs:             nodeIPs,
		KubeletKubeconfig:   creds.KubeletKubeconfig,
		KubeProxyKubeconfig: creds.KubeProxyKubeconfig,
		CAFile:              creds.CAFile,
		Network:             settings.Network,
		NetworkPolicy:       settings.EnforceNetworkPolicy(),
		CIS:                 settings.Profile == config.ProfileCIS,
		Registries:          registrySettings,
		RegistriesFile:      w.RegistriesFile,
		FollowRegistries:    true,
		// Every server, directly: each API server reaches this node only
		// through a tunnel opened to it.
		TunnelServers: lb.Servers,
	})
	if err != nil {
		return err
	}
	components := append(parts.All(), &bootstrap.KubeProxyRotation{PKIDir: w.Layout.AgentPKIDir(), NodeKubeconfig: creds.KubeletKubeconfig},
		&bootstrap.CATrust{Request: request, Credentials: creds, NodeKubeconfig: creds.KubeletKubeconfig})
	manager := component.NewManager(components...)
	manager.OnChange = component.StatesFile(w.Layout.ComponentStates())
	return manager.Run(ctx, func() {
		klog.InfoS("monokube worker is ready", "took", time.Since(began).Round(time.Millisecond), "servers", lb.Servers(), "node", w.Identity.Name)
		service.NotifyReady()
		if w.OnReady != nil {
			w.OnReady()
		}
	})
}

// clusterSettings reads the cluster's settings as this node, keeping a copy
// for starts while the server is away.
func (w *Worker) clusterSettings(ctx context.Context, creds bootstrap.WorkerCredentials) (join.ClusterSettings, error) {
	cache := w.Layout.ClusterSettingsFile()
	client, err := kubeclient.New(creds.KubeletKubeconfig)
	if err != nil {
		return join.ClusterSettings{}, err
	}
	var settings join.ClusterSettings
	err = wait.PollUntilContextTimeout(ctx, time.Second, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		settings, err = bootstrap.FetchClusterSettings(ctx, client)
		return err == nil, nil
	})
	if err == nil {
		return settings, bootstrap.SaveClusterSettings(cache, settings)
	}
	if cached, cacheErr := bootstrap.LoadClusterSettings(cache); cacheErr == nil {
		klog.InfoS("Server unreachable; using the cluster settings saved at the last start", "reason", err.Error())
		return cached, nil
	}
	return settings, fmt.Errorf("read cluster settings from the server: %w", err)
}

// registrySettings reads the cluster's registry settings as this node.
func (w *Worker) registrySettings(ctx context.Context, creds bootstrap.WorkerCredentials) (registries.Settings, error) {
	client, err := kubeclient.New(creds.KubeletKubeconfig)
	if err != nil {
		return registries.Settings{}, err
	}
	return registries.Fetch(ctx, client, w.Layout.RegistrySettingsFile())
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

// undoFirstJoin removes what a first join that failed wrote into the data
// dir (the entries not in before): the next try starts as clean as this
// one, and an operator who gives up finds nothing of a node that never was.
func (w *Worker) undoFirstJoin(before []string) {
	names, err := w.Layout.StateEntries()
	if err != nil {
		return
	}
	for _, name := range names {
		if slices.Contains(before, name) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(w.Layout.Dir, name)); err != nil {
			klog.ErrorS(err, "Could not remove what the failed join wrote", "path", name)
		}
	}
}
