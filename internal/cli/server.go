package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/memory"
	"github.com/monokube/monokube/internal/server"
)

func newServerCommand(g *globals) *cobra.Command {
	var (
		configPath   string
		apiAddress   string
		apiPort      int
		enableWorker bool
		nodeIPs      []string
		disable      []string
		token        string
		tokenFile    string
		clusterReset bool
		restorePath  string
		egressMode   string
		embeddedReg  bool
		profile      string
		node         nodeFlags
	)
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a Kubernetes control plane",
		Long: `Run the datastore, API server, controller-manager and scheduler in this process.
State lives in --data-dir; the admin kubeconfig is <data-dir>/pki/admin.conf.
The config file is read from --config, or /etc/monokube/monokube.yaml when it exists.
SIGTERM or SIGINT stops every component in reverse order and exits 0.

With --token (from ` + "`monokube token create --role controller`" + ` on a server) this
server joins that cluster as another control-plane member: it receives the
cluster's CA, service-account and encryption keys (after checking the server
against the token's CA pin) and, with embedded etcd, becomes an etcd member.
Every server needs spec.storage.type etcd, postgres or mysql, and the same
config. After a restart the token is no longer needed.

--cluster-reset recovers an embedded etcd that lost quorum: run it on one
surviving server; it becomes a one-member cluster keeping all its data and
exits. Start it again without the flag; the other servers then join anew
(` + "`monokube reset`" + ` on them, then server --token).`,
		Example: `  sudo monokube server --enable-worker        # single-node cluster
  sudo monokube server --enable-worker --node-ip 192.168.1.5 --node-ip 2001:db8::5   # dual-stack
  sudo monokube server --profile cis           # hardened to the CIS benchmark; then: monokube check cis
  monokube server --data-dir /tmp/mk --config ./monokube.yaml --api-port 7443
  sudo monokube server --config /etc/monokube/ha.yaml --token-file /etc/monokube/controller-token
  sudo monokube server --cluster-reset         # then start again without the flag
  sudo monokube server --cluster-reset --restore-path /srv/backups/monokube-backup-….tar.gz`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath, cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("api-address") {
				cfg.Spec.API.Address = apiAddress
			}
			if cmd.Flags().Changed("api-port") {
				cfg.Spec.API.Port = apiPort
			}
			if cmd.Flags().Changed("egress-selector-mode") {
				cfg.Spec.Network.EgressSelectorMode = egressMode
			}
			if embeddedReg {
				cfg.Spec.Registries.EmbeddedMirror = true
			}
			if cmd.Flags().Changed("profile") {
				cfg.Spec.Profile = profile
			}
			if err := node.apply(cmd, &cfg.Spec.Worker); err != nil {
				return err
			}
			if err := cfg.Spec.Addons.Disable(disable); err != nil {
				return fmt.Errorf("--disable: %w", err)
			}
			if invalid := config.Validate(cfg, nil); invalid != nil {
				// A file that was not there cannot be what is wrong: the
				// value came from a flag or a default.
				if _, err := os.Stat(configPath); err == nil {
					invalid.File = configPath
				}
				return invalid
			}
			if err := checkNodeIPs(nodeIPs); err != nil {
				return err
			}
			joinToken, err := readToken(optional(token), tokenFile)
			if err != nil {
				return err
			}
			if clusterReset && !cfg.Spec.Storage.Embedded() {
				return fmt.Errorf("--cluster-reset recovers an embedded etcd; this server's spec.storage.type is %q", cfg.Spec.Storage.Type)
			}
			if restorePath != "" && !clusterReset {
				return errors.New("--restore-path goes with --cluster-reset (to restore into a new data dir, use `monokube restore`)")
			}
			srv := &server.Server{Config: cfg, Layout: g.layout, ConfigPath: configPath, EnableWorker: enableWorker, NodeIPs: nodeIPs, Token: joinToken,
				ClusterReset: clusterReset, RestorePath: restorePath, RegistriesFile: node.registries, OnReady: memory.Settled}
			return runResident(func(ctx context.Context) error {
				return srv.Run(ctx)
			})
		},
	}
	cmd.Flags().StringVar(&configPath, "config", config.DefaultConfigPath, "ClusterConfig file")
	cmd.Flags().StringVar(&apiAddress, "api-address", "", "address the API server listens on and advertises (overrides spec.api.address)")
	cmd.Flags().IntVar(&apiPort, "api-port", config.DefaultAPIPort, "API server port (overrides spec.api.port)")
	cmd.Flags().BoolVar(&enableWorker, "enable-worker", false, "also run this machine as a node: containerd, kubelet, kube-proxy, CNI")
	cmd.Flags().StringSliceVar(&nodeIPs, "node-ip", nil, "with --enable-worker: address of this node; twice (or IPv4,IPv6) on a dual-stack cluster (default: the API server's advertised address, and its other family's on the same interface)")
	cmd.Flags().StringSliceVar(&disable, "disable", nil,
		"add-ons to turn off, comma-separated: "+strings.Join(config.AddonNames, ", ")+" (as spec.addons.<name>.enabled: false)")
	cmd.Flags().StringVar(&egressMode, "egress-selector-mode", config.EgressPod,
		"what the API server reaches through the tunnels nodes open to it: "+strings.Join(config.EgressSelectorModes, ", ")+" (overrides spec.network.egressSelectorMode)")
	cmd.Flags().BoolVar(&embeddedReg, "embedded-registry", false,
		"nodes serve each other the images they hold and pull from their peers first (as spec.registries.embeddedMirror: true)")
	cmd.Flags().StringVar(&profile, "profile", "", `harden the cluster to a benchmark (overrides spec.profile): "cis", the CIS Kubernetes Benchmark (see monokube check cis)`)
	cmd.Flags().StringVar(&token, "token", "", "controller join token: join a running cluster as another server")
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "read the controller join token from this file")
	cmd.Flags().BoolVar(&clusterReset, "cluster-reset", false, "make this server's embedded etcd a one-member cluster keeping its data, then exit")
	cmd.Flags().StringVar(&restorePath, "restore-path", "", "with --cluster-reset: replace the etcd data with this backup's snapshot (the old data is kept aside)")
	node.add(cmd, " (overrides spec.worker)")
	return cmd
}

// optional turns a flag value into readToken's argument list.
func optional(value string) []string {
	if value == "" {
		return nil
	}
	return []string{value}
}

// runResident runs a long-lived role until a signal.
func runResident(run func(ctx context.Context) error) error {
	memory.Starting()
	servePprof()
	ctx, stop := signalContext()
	err := run(ctx)
	stop()
	if errors.Is(err, component.ErrRestart) {
		return restart()
	}
	return err
}

// restart runs this program again in this process, with the same
// arguments, once everything stopped: the PID stays, so a service manager
// or a test that started it sees one long-running process.
func restart() error {
	klog.InfoS("Starting again")
	klog.Flush()
	if err := syscall.Exec("/proc/self/exe", os.Args, os.Environ()); err != nil {
		return fmt.Errorf("restart: %w", err)
	}
	return nil
}

// loadConfig reads the config file; the default path is optional, an
// explicitly given one is not.
func loadConfig(path string, explicit bool) (*config.ClusterConfig, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) && !explicit {
		klog.InfoS("No config file; using defaults", "path", path)
		return config.Default(), nil
	}
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	klog.InfoS("Loaded config", "path", path)
	return cfg, nil
}

// signalContext ends on the first SIGTERM or SIGINT; a second one exits at
// once, for an operator whose shutdown is stuck.
func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-signals
		klog.InfoS("Received signal; stopping", "signal", sig.String())
		cancel()
		sig = <-signals
		klog.InfoS("Received second signal; exiting now", "signal", sig.String())
		klog.Flush()
		os.Exit(1)
	}()
	return ctx, func() { signal.Stop(signals); cancel() }
}
