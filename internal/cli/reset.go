package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/node"
	"github.com/monokube/monokube/internal/node/cleanup"
)

func newResetCommand(g *globals) *cobra.Command {
	var cgroupRoot string
	cmd := &cobra.Command{
		Use:   "reset",
		Short: "Remove everything this node put on the machine (stop it first)",
		Long: `Remove what a stopped monokube node left behind: its shims and containers, the
mounts under its data dir, the cni0 bridge, the iptables/nftables rules of
kube-proxy and the CNI plugins (KUBE-*, CNI-*), its cgroups and finally the data
dir itself, cluster state and certificates included. Refuses while the server
runs.

The cgroup root is the one the node recorded in <data-dir>/agent/node.json;
--cgroup-root overrides it (for data dirs from before that record). Nothing is
removed unless the data dir looks like a monokube data dir and the cgroup root
is one clean absolute path below the hierarchy roots.`,
		Example: `  sudo monokube reset
  sudo monokube reset --data-dir /tmp/mk --cgroup-root /mk`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			layout := g.layout
			record, _, err := node.LoadRecord(layout)
			if err != nil {
				return err
			}
			root := record.CgroupRoot
			override, err := cgroupRootFlag(cmd, cgroupRoot)
			if err != nil {
				return err
			}
			if override != "" {
				root = override
			}
			// Before anything is touched, the lock file included.
			if err := cleanup.Check(layout, root); err != nil {
				return fmt.Errorf("cannot reset: %w", err)
			}
			if _, err := os.Stat(layout.Dir); err == nil {
				release, err := layout.Lock()
				if err != nil {
					return fmt.Errorf("cannot reset: %w", err)
				}
				release()
			}
			if err := cleanup.Reset(layout, root); err != nil {
				return fmt.Errorf("reset incomplete: %w", err)
			}
			klog.InfoS("Reset complete", "dataDir", layout.Dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&cgroupRoot, "cgroup-root", "", "cgroup root the node used (default: the one it recorded)")
	return cmd
}
