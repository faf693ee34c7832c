package node

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"text/template"
	"time"

	"github.com/containerd/containerd/v2/cmd/containerd/server"
	srvconfig "github.com/containerd/containerd/v2/cmd/containerd/server/config"
	"github.com/containerd/containerd/v2/core/mount"
	containerdlog "github.com/containerd/log"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/datadir"
)

// Containerd runs the containerd daemon in this process, with its CRI plugin
// serving the kubelet. Shims and containers are separate processes that
// outlive it, so a restart of monokube leaves pods running.
type Containerd struct {
	Layout datadir.Layout
	// BinDir holds runc, the shim and the CNI plugins (bundle.Extract).
	BinDir     string
	PauseImage string
	// SystemdCgroup selects runc's systemd cgroup driver (only where systemd is PID 1).
	SystemdCgroup bool

	server *server.Server
	cancel context.CancelFunc
}

var _ component.Component = (*Containerd)(nil)

func (c *Containerd) Name() string { return "containerd" }

// configTemplate is containerd's config (version 4). Every default path
// that would land outside the data dir or our /run directory is moved.
var configTemplate = template.Must(template.New("containerd").Parse(`version = 4
root = "{{.Root}}"
state = "{{.State}}"
required_plugins = ["io.containerd.grpc.v1.cri"]

[plugins."io.containerd.server.v1.grpc"]
  address = "{{.Socket}}"
[plugins."io.containerd.server.v1.ttrpc"]
  address = "{{.Socket}}.ttrpc"
[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "{{.ShimSockets}}"
  env = ["PATH={{.BinDir}}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "{{.PauseImage}}"
  [plugins."io.containerd.cri.v1.images".registry]
    config_path = "{{.RegistryConfig}}"
[plugins."io.containerd.cri.v1.runtime"]
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  cdi_spec_dirs = []
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["{{.BinDir}}"]
    conf_dir = "{{.CNIConfDir}}"
    max_conf_num = 1
    use_internal_loopback = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      runtime_path = "{{.BinDir}}/containerd-shim-runc-v2"
      sandboxer = "podsandbox"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        BinaryName = "{{.BinDir}}/runc"
        Root = "{{.RuncRoot}}"
        SystemdCgroup = {{.SystemdCgroup}}
[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`))

func (c *Containerd) configPath() string { return c.Layout.ContainerdConfigFile() }

// Init writes the config where operators (and ctr) can read it.
func (c *Containerd) Init(context.Context) error {
	var buf bytes.Buffer
	err := configTemplate.Execute(&buf, map[string]any{
		"Root": c.Layout.ContainerdRoot(), "State": c.Layout.ContainerdState(), "Socket": c.Layout.ContainerdSocket(),
		"ShimSockets": c.Layout.ShimSockets(), "BinDir": c.BinDir, "PauseImage": c.PauseImage,
		"RegistryConfig": c.Layout.RegistryConfigDir(), "CNIConfDir": c.Layout.CNIConfDir(),
		"RuncRoot": c.Layout.RuncRoot(), "SystemdCgroup": c.SystemdCgroup,
	})
	if err != nil {
		return fmt.Errorf("render containerd config: %w", err)
	}
	for _, dir := range []string{filepath.Dir(c.configPath()), c.Layout.CNIConfDir(), c.Layout.Run} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create %s: %w", dir, err)
		}
	}
	if err := os.WriteFile(c.configPath(), buf.Bytes(), 0o600); err != nil {
		return fmt.Errorf("write containerd config: %w", err)
	}
	return nil
}

func (c *Containerd) Start(ctx context.Context) error {
	config := &srvconfig.Config{}
	if err := srvconfig.LoadConfig(ctx, c.configPath(), config); err != nil {
		return fmt.Errorf("load %s: %w", c.configPath(), err)
	}
	// containerd's CRI plugin sets klog's process-wide verbosity to 2 at
	// info level; at warn it leaves klog alone, and its own log stays quiet.
	if err := containerdlog.SetLevel("warn"); err != nil {
		return err
	}
	if err := server.CreateTopLevelDirectories(config); err != nil {
		return fmt.Errorf("create containerd dirs: %w", err)
	}
	if err := mount.SetTempMountLocation(filepath.Join(config.Root, "tmpmounts")); err != nil {
		return fmt.Errorf("temp mount dir: %w", err)
	}
	if warnings, err := mount.CleanupTempMounts(0); err != nil {
		klog.InfoS("Could not clean containerd temp mounts", "err", err, "warnings", len(warnings))
	}
	// Its plugins keep this context for their lifetime; Stop owns it.
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	c.cancel = cancel
	srv, err := server.New(runCtx, config)
	if err != nil {
		cancel()
		return fmt.Errorf("containerd: %w", err)
	}
	c.server = srv
	if err := srv.Start(runCtx); err != nil {
		return fmt.Errorf("containerd serve: %w", err)
	}
	return nil
}

// Ready waits for the plugins to report ready and the CRI socket to answer.
func (c *Containerd) Ready(ctx context.Context) error {
	c.server.Wait()
	return wait.PollUntilContextCancel(ctx, 20*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		return criAnswers(ctx, c.Layout.ContainerdSocket()), nil
	})
}

func (c *Containerd) Stop() error {
	if c.server != nil {
		c.server.Stop()
	}
	if c.cancel != nil {
		c.cancel()
	}
	return nil
}
