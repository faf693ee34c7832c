package registries

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	containerd "github.com/containerd/containerd/v2/client"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
)

// Node is a node's registry part: the front containerd pulls through, the
// hosts.toml files that send pulls to it, and, with the embedded mirror,
// this node's mirror and its view of the peers.
type Node struct {
	Layout   datadir.Layout
	NodeName string
	// Cluster are the cluster's settings: a server's own, resolved, or what
	// a worker read from the servers.
	Cluster Settings
	// LocalFile is this machine's registries.yaml, added over Cluster and
	// re-read when it changes; a missing file adds nothing.
	LocalFile string
	// Follow makes the node apply the settings the servers publish as they
	// change (a worker; a server's settings change with its config only).
	Follow bool
	// Client and Kubeconfig are the node's identity (the kubelet's).
	Client     kubernetes.Interface
	Kubeconfig string
	CAFile     string
	// ServingCert and ServingKey serve the mirror; empty means the
	// kubelet's own rotated pair in its certificate directory.
	ServingCert, ServingKey string

	component.Task
	front *Front
	// mu guards what the watchers change: the two sources and the file's time.
	mu      sync.Mutex
	local   Settings
	cluster Settings
	modTime time.Time
}

var _ component.Component = (*Node)(nil)

func (n *Node) Name() string { return "registries" }

func (n *Node) Init(context.Context) error {
	return os.MkdirAll(n.Layout.RegistryConfigDir(), 0o700)
}

func (n *Node) Start(ctx context.Context) error {
	local, modTime, err := loadLocal(n.LocalFile)
	if err != nil {
		return err
	}
	n.local, n.modTime, n.cluster = local, modTime, n.Cluster
	var peers *Peers
	var nodeInformers informers.SharedInformerFactory
	if n.Cluster.EmbeddedMirror {
		nodeInformers = informers.NewSharedInformerFactory(n.Client, 0)
		peers, err = newPeers(n.NodeName, nodeInformers.Core().V1().Nodes().Lister(), n.CAFile, n.Kubeconfig)
		if err != nil {
			return err
		}
	}
	front, err := newFront(peers)
	if err != nil {
		return err
	}
	n.front = front
	if err := n.apply(); err != nil {
		front.close()
		return err
	}
	var mirror *Mirror
	if n.Cluster.EmbeddedMirror {
		mirror, err = n.startMirror()
		if err != nil {
			front.close()
			return err
		}
	}
	n.Go(ctx, func(ctx context.Context) error {
		group, ctx := errgroup.WithContext(ctx)
		group.Go(front.serve)
		if mirror != nil {
			group.Go(mirror.serve)
			nodeInformers.Start(ctx.Done())
		}
		if n.Follow {
			n.followCluster(ctx)
		}
		group.Go(func() error { n.watchLocal(ctx); return nil })
		group.Go(func() error {
			<-ctx.Done()
			front.close()
			if mirror != nil {
				mirror.close()
			}
			return nil
		})
		return group.Wait()
	})
	klog.InfoS("Registry settings applied", "registries", n.settings().Registries(), "embeddedMirror", n.Cluster.EmbeddedMirror,
		"front", front.URL(), "localFile", n.LocalFile)
	return nil
}

func (n *Node) startMirror() (*Mirror, error) {
	client, err := containerd.New(n.Layout.ContainerdSocket(), containerd.WithDefaultNamespace("k8s.io"))
	if err != nil {
		return nil, fmt.Errorf("embedded mirror: %w", err)
	}
	cert, key := n.ServingCert, n.ServingKey
	if cert == "" {
		cert = filepath.Join(n.Layout.KubeletPKIDir(), "kubelet-server-current.pem")
		key = cert
	}
	mirror, err := newMirror(client, n.CAFile, cert, key)
	if err != nil {
		client.Close()
		return nil, err
	}
	klog.InfoS("Embedded registry mirror serving this node's images to its peers", "port", MirrorPort)
	return mirror, nil
}

func (n *Node) settings() Settings { return n.cluster.Over(n.local) }

// equalSettings compares what a node uses of two settings.
func equalSettings(a, b Settings) bool {
	rawA, errA := json.Marshal(Settings{Mirrors: a.Mirrors, Hosts: a.Hosts})
	rawB, errB := json.Marshal(Settings{Mirrors: b.Mirrors, Hosts: b.Hosts})
	return errA == nil && errB == nil && bytes.Equal(rawA, rawB)
}

// apply hands the current settings to the front and the hosts.toml files.
func (n *Node) apply() error {
	s := n.settings()
	n.front.update(s)
	return writeHostsFiles(n.Layout.RegistryConfigDir(), s, n.front.URL(), n.front.token)
}

// followCluster applies the servers' settings whenever they change, and
// keeps a copy for starts while the servers are away.
func (n *Node) followCluster(ctx context.Context) {
	factory := informers.NewSharedInformerFactoryWithOptions(n.Client, 0, informers.WithNamespace(metav1.NamespaceSystem),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("metadata.name", SecretName).String()
		}))
	changed := func(obj any) {
		secret, ok := obj.(*corev1.Secret)
		if !ok {
			return
		}
		s, err := FromSecret(secret)
		if err != nil {
			klog.ErrorS(err, "Ignoring the cluster's registry settings")
			return
		}
		n.mu.Lock()
		defer n.mu.Unlock()
		if equalSettings(s, n.cluster) {
			return
		}
		n.cluster.Mirrors, n.cluster.Hosts = s.Mirrors, s.Hosts
		if err := n.apply(); err != nil {
			klog.ErrorS(err, "Could not apply the cluster's new registry settings")
			return
		}
		if err := save(n.Layout.RegistrySettingsFile(), n.cluster); err != nil {
			klog.ErrorS(err, "Could not keep a copy of the registry settings")
		}
		klog.InfoS("Applied the cluster's new registry settings", "registries", n.settings().Registries())
	}
	informer := factory.Core().V1().Secrets().Informer()
	_, _ = informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    changed,
		UpdateFunc: func(_, obj any) { changed(obj) },
	})
	factory.Start(ctx.Done())
}

// watchLocal re-reads the local file when it changes.
func (n *Node) watchLocal(ctx context.Context) {
	if n.LocalFile == "" {
		return
	}
	ticker := time.NewTicker(5 * time.Second)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		local, modTime, err := loadLocal(n.LocalFile)
		if err != nil {
			klog.ErrorS(err, "Keeping the registry settings in use")
			continue
		}
		n.mu.Lock()
		if !modTime.Equal(n.modTime) {
			n.local, n.modTime = local, modTime
			if err := n.apply(); err != nil {
				klog.ErrorS(err, "Could not apply the changed registries file", "file", n.LocalFile)
			} else {
				klog.InfoS("Applied the changed registries file", "file", n.LocalFile, "registries", n.settings().Registries())
			}
		}
		n.mu.Unlock()
	}
}

// loadLocal reads and resolves a registries.yaml; a missing file is empty.
func loadLocal(path string) (Settings, time.Time, error) {
	if path == "" {
		return Settings{}, time.Time{}, nil
	}
	info, err := os.Stat(path)
	if os.IsNotExist(err) {
		return Settings{}, time.Time{}, nil
	}
	if err != nil {
		return Settings{}, time.Time{}, fmt.Errorf("registries file: %w", err)
	}
	spec, err := config.LoadRegistries(path)
	if err != nil {
		return Settings{}, time.Time{}, err
	}
	s, err := Resolve(spec)
	if err != nil {
		return Settings{}, time.Time{}, fmt.Errorf("registries file %s: %w", path, err)
	}
	return s, info.ModTime(), nil
}

func (n *Node) Ready(context.Context) error { return nil }

func (n *Node) Stop() error { return n.Task.Stop(5 * time.Second) }

// Fetch reads the cluster's registry settings as a worker, keeping a copy
// at cache; with the servers away it returns the copy. A cluster whose
// servers predate the settings has none.
func Fetch(ctx context.Context, client kubernetes.Interface, cache string) (Settings, error) {
	var secret *corev1.Secret
	var err error
	// A refusal may be RBAC just written and not yet in force; lasting, it
	// is a server from before the settings, like a missing Secret.
	for try := 0; try < 10; try++ {
		secret, err = client.CoreV1().Secrets(metav1.NamespaceSystem).Get(ctx, SecretName, metav1.GetOptions{})
		if !apierrors.IsForbidden(err) {
			break
		}
		time.Sleep(time.Second)
	}
	switch {
	case apierrors.IsNotFound(err), apierrors.IsForbidden(err):
		klog.InfoS("The cluster has no registry settings for nodes (its servers predate them)", "reason", err.Error())
		return Settings{}, nil
	case err == nil:
		s, err := FromSecret(secret)
		if err != nil {
			return Settings{}, err
		}
		return s, save(cache, s)
	}
	if cached, cacheErr := load(cache); cacheErr == nil {
		klog.InfoS("Server unreachable; using the registry settings saved at the last start", "reason", err.Error())
		return cached, nil
	} else if !errors.Is(cacheErr, os.ErrNotExist) {
		return Settings{}, cacheErr
	}
	return Settings{}, fmt.Errorf("read the cluster's registry settings: %w", err)
}
