package fleet

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/yaml"

	"github.com/monokube/monokube/internal/cgroups"
	"github.com/monokube/monokube/internal/config"
)

// localService runs monokube in a local node's namespaces as a process of
// its own session: a node has no init system, and its /run (a tmpfs of its
// own) keeps the PID.
var localService = service{commands: &ServiceCommands{
	Start: `pid=$(cat /run/monokube.pid 2>/dev/null) && kill -0 "$pid" 2>/dev/null && exit 0
eval "set -- $MONOKUBE_ARGS"
setsid /usr/local/bin/monokube "$MONOKUBE_ROLE" "$@" >>/var/lib/monokube/monokube.log 2>&1 </dev/null &
echo $! > /run/monokube.pid`,
	Stop: `pid=$(cat /run/monokube.pid 2>/dev/null) || exit 0
kill "$pid" 2>/dev/null || exit 0
i=0; while kill -0 "$pid" 2>/dev/null; do i=$((i+1)); [ $i -gt 900 ] && { echo "monokube (pid $pid) still runs 90 s after SIGTERM" >&2; exit 1; }; sleep 0.1; done
rm -f /run/monokube.pid`,
}}

// stopBalancer ends a worker's API balancer process, which outlives the
// worker's restarts (upgrades rely on that) but not `cluster stop`.
const stopBalancer = `for f in /run/monokube/*/api-balancer.pid; do [ -e "$f" ] && kill "$(cat "$f")" 2>/dev/null; done; true`

// LocalFile is the cluster file of a local cluster of servers and workers.
func LocalFile(name string, servers, workers int) *File {
	f := &File{APIVersion: config.APIVersion, Kind: Kind, Metadata: config.ObjectMeta{Name: name},
		Spec: Spec{Provider: ProviderLocal, Config: config.Default().Spec}}
	if servers > 1 {
		f.Spec.Config.Storage.Type = config.StorageEtcd
	}
	for i := range servers + workers {
		role := RoleWorker
		if i < servers {
			role = RoleServerWorker
		}
		f.Spec.Hosts = append(f.Spec.Hosts, Host{Name: fmt.Sprintf("%s-%d", name, i+1), Role: role})
	}
	f.defaults()
	return f
}

// Local runs the local provider's verbs.
type Local struct {
	// Binary is the monokube every node runs.
	Binary string
	Out    io.Writer
	// Kubeconfig is the user's kubeconfig the cluster's context goes into.
	Kubeconfig string
	// MaxUnavailable and DrainTimeout shape upgrades, as for SSH hosts.
	MaxUnavailable int
	DrainTimeout   time.Duration
}

// Apply creates or brings up to date the local cluster f describes.
func (l *Local) Apply(ctx context.Context, f *File) error {
	began := time.Now()
	c, err := LoadLocal(f.Metadata.Name)
	if err != nil {
		if c, err = NewLocalCluster(f.Metadata.Name, f.Spec.Hosts, f.Spec.Local.Subnet); err != nil {
			return err
		}
	}
	for _, h := range f.Spec.Hosts {
		if _, ok := c.node(h.Name); !ok {
			c.Nodes = append(c.Nodes, LocalNode{Name: h.Name, Index: c.nextIndex(), IP: fmt.Sprintf("%s.%d", c.Subnet, 10+c.nextIndex())})
		}
	}
	if err := c.Ensure(); err != nil {
		return err
	}
	raw, err := yaml.Marshal(f)
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(c.Dir(), "cluster.yaml"), raw, 0o600); err != nil {
		return err
	}
	applier := l.applier(c, f)
	if err := applier.Apply(ctx); err != nil {
		return err
	}
	// Nodes removed from the file were reset; their namespaces go too.
	if err := c.prune(f); err != nil {
		return err
	}
	if err := mergeContext(l.Kubeconfig, f.Metadata.Name, applier.Kubeconfig); err != nil {
		return err
	}
	fmt.Fprintf(l.Out, "Local cluster %s: %d nodes in %s; kubectl --context %s get nodes\n",
		f.Metadata.Name, len(f.Spec.Hosts), time.Since(began).Round(100*time.Millisecond), f.Metadata.Name)
	return nil
}

func (l *Local) applier(c *LocalCluster, f *File) *Applier {
	return &Applier{
		File: f, Binary: l.Binary, Out: l.Out,
		Kubeconfig: filepath.Join(c.Dir(), "admin.conf"),
		Dial:       func(_ context.Context, h Host) (Machine, error) { return c.Machine(h.Name) },
		ServerURL:  func(h Host) string { return fmt.Sprintf("https://%s:%d", c.NodeIP(h.Name), f.Spec.Config.API.Port) },
		ExtraArgs: func(h Host) []string {
			return []string{"--cgroup-root", f.clusterCgroup() + "/" + h.Name}
		},
		Service:        func(Host) service { return localService },
		MaxUnavailable: l.MaxUnavailable, DrainTimeout: l.DrainTimeout,
	}
}

// clusterCgroup holds the cgroups of every node of a local cluster.
func (f *File) clusterCgroup() string {
	return strings.TrimSuffix(f.Spec.Local.CgroupParent, "/") + "/" + f.Metadata.Name
}

func (c *LocalCluster) nextIndex() int {
	next := 1
	for _, n := range c.Nodes {
		next = max(next, n.Index+1)
	}
	return next
}

// prune drops the namespaces of nodes the file no longer names.
func (c *LocalCluster) prune(f *File) error {
	var kept, gone []LocalNode
	for _, n := range c.Nodes {
		if _, ok := hostNamed(f, n.Name); ok {
			kept = append(kept, n)
		} else {
			gone = append(gone, n)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	removed := &LocalCluster{Name: c.Name, ID: c.ID, Subnet: c.Subnet, Nodes: gone}
	if err := removed.deleteNodes(); err != nil {
		return err
	}
	for _, n := range gone {
		_ = os.RemoveAll(n.root(c))
	}
	c.Nodes = kept
	return c.save()
}

func hostNamed(f *File, name string) (Host, bool) {
	for _, h := range f.Spec.Hosts {
		if h.Name == name {
			return h, true
		}
	}
	return Host{}, false
}

// Stop stops every node, workers first.
func (l *Local) Stop(ctx context.Context, name string) error {
	c, f, err := loadLocalFile(name)
	if err != nil {
		return err
	}
	hosts := append(f.Workers(), f.Servers()...)
	for _, h := range hosts {
		m, err := c.Machine(h.Name)
		if err != nil {
			return err
		}
		if err := localService.stop(ctx, m, roleOf(h)); err != nil {
			return &StepError{h.Name, "stop", err}
		}
		if _, err := m.Run(ctx, stopBalancer); err != nil {
			return &StepError{h.Name, "stop", err}
		}
		fmt.Fprintf(l.Out, "  %-20s stopped\n", h.Name)
	}
	return nil
}

// Start starts every node again, servers first (namespaces made again
// after a reboot).
func (l *Local) Start(ctx context.Context, name string) error {
	c, f, err := loadLocalFile(name)
	if err != nil {
		return err
	}
	if err := c.Ensure(); err != nil {
		return err
	}
	for _, h := range append(f.Servers(), f.Workers()...) {
		m, err := c.Machine(h.Name)
		if err != nil {
			return err
		}
		if err := localService.start(ctx, m, roleOf(h)); err != nil {
			return &StepError{h.Name, "start", err}
		}
		fmt.Fprintf(l.Out, "  %-20s started\n", h.Name)
	}
	return nil
}

// Delete stops and resets every node and removes the cluster: nothing of
// it is left on the machine, and its context leaves the kubeconfig.
func (l *Local) Delete(ctx context.Context, name string) error {
	c, f, err := loadLocalFile(name)
	if err != nil {
		return err
	}
	if err := c.Ensure(); err != nil {
		return err
	}
	for _, h := range append(f.Workers(), f.Servers()...) {
		m, err := c.Machine(h.Name)
		if err != nil {
			return err
		}
		if err := localService.stop(ctx, m, roleOf(h)); err != nil {
			return &StepError{h.Name, "stop", err}
		}
		if _, err := m.Run(ctx, "[ ! -d "+remoteDataDir+" ] || "+remoteBinary+" reset --data-dir "+remoteDataDir); err != nil {
			return &StepError{h.Name, "reset", err}
		}
		fmt.Fprintf(l.Out, "  %-20s stopped and reset\n", h.Name)
	}
	if err := c.Delete(); err != nil {
		return err
	}
	// Each reset removed its node's cgroups; the cluster's own level is left.
	if err := cgroups.RemoveRoot(cgroups.Detect(), f.clusterCgroup()); err != nil {
		return err
	}
	if err := removeContext(l.Kubeconfig, name); err != nil {
		return err
	}
	fmt.Fprintf(l.Out, "Local cluster %s deleted.\n", name)
	return nil
}

func loadLocalFile(name string) (*LocalCluster, *File, error) {
	c, err := LoadLocal(name)
	if err != nil {
		return nil, nil, err
	}
	f, err := LoadFile(filepath.Join(c.Dir(), "cluster.yaml"))
	if err != nil {
		return nil, nil, err
	}
	return c, f, nil
}

// mergeContext puts the cluster's admin kubeconfig into the user's
// kubeconfig as context name (kind's and k3d's habit), current if the user
// had none.
func mergeContext(userConfig, name, adminConfig string) error {
	admin, err := clientcmd.LoadFromFile(adminConfig)
	if err != nil {
		return err
	}
	user, err := clientcmd.LoadFromFile(userConfig)
	if os.IsNotExist(err) {
		user, err = clientcmd.Load(nil)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", userConfig, err)
	}
	ctx := admin.Contexts[admin.CurrentContext]
	if ctx == nil {
		return fmt.Errorf("%s names no current context", adminConfig)
	}
	cluster, auth := admin.Clusters[ctx.Cluster], admin.AuthInfos[ctx.AuthInfo]
	user.Clusters[name] = cluster
	user.AuthInfos[name+"-admin"] = auth
	merged := ctx.DeepCopy()
	merged.Cluster, merged.AuthInfo = name, name+"-admin"
	user.Contexts[name] = merged
	if user.CurrentContext == "" {
		user.CurrentContext = name
	}
	if err := os.MkdirAll(filepath.Dir(userConfig), 0o700); err != nil {
		return err
	}
	return clientcmd.WriteToFile(*user, userConfig)
}

func removeContext(userConfig, name string) error {
	user, err := clientcmd.LoadFromFile(userConfig)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	delete(user.Clusters, name)
	delete(user.AuthInfos, name+"-admin")
	delete(user.Contexts, name)
	if user.CurrentContext == name {
		user.CurrentContext = ""
	}
	return clientcmd.WriteToFile(*user, userConfig)
}

// Applier is the applier of the local cluster f describes (made by a create
// or an apply before).
func (l *Local) Applier(f *File) (*Applier, error) {
	c, err := LoadLocal(f.Metadata.Name)
	if err != nil {
		return nil, err
	}
	if err := c.Ensure(); err != nil {
		return nil, err
	}
	return l.applier(c, f), nil
}
