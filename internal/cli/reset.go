package cli

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/node"
)

func newResetCommand(g *globals) *cobra.Command {
	var (
		configPath string
		cgroupRoot string
	)
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Remove everything this node put on the machine (stop it first)",
		Long: `Remove what a stopped monokube node left behind: its shims and containers, the
mounts under its data dir, the cni0 bridge, the iptables/nftables rules of
kube-proxy and the CNI plugins (KUBE-*, CNI-*), its cgroups (below
spec.worker.cgroupRoot or --cgroup-root) and finally the data dir itself,
cluster state and certificates included. Refuses while the server runs.`,
		Example: `  sudo monokube reset
  sudo monokube reset --data-dir /tmp/mk --cgroup-root /mk`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dataDir, err := filepath.Abs(g.dataDir)
			if err != nil {
				return err
			}
			cfg, err := loadConfig(configPath, cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("cgroup-root") {
				cfg.Spec.Worker.CgroupRoot = cgroupRoot
			}
			if _, err := os.Stat(dataDir); err == nil {
				release, err := datadir.Lock(dataDir)
				if err != nil {
					return fmt.Errorf("cannot reset: %w", err)
				}
				release()
			}
			if err := node.Reset(node.NewPaths(dataDir), cfg.Spec.Worker.CgroupRoot); err != nil {
				return fmt.Errorf("reset incomplete: %w", err)
			}
			klog.InfoS("Reset complete", "dataDir", dataDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", config.DefaultConfigPath, "ClusterConfig file (for spec.worker.cgroupRoot)")
	cmd.Flags().StringVar(&cgroupRoot, "cgroup-root", "", "cgroup root the node used (overrides spec.worker.cgroupRoot)")
	return cmd
}
