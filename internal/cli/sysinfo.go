package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/sysinfo"
)

func newSysinfoCommand(g *globals) *cobra.Command {
	var (
		configPath string
		output     string
		role       string
	)
	cmd := &cobra.Command{
		Use:   "sysinfo",
		Short: "Check that this host can run a server and a node; exit 1 on a FAIL",
		Long: `Check every requirement of a server and a node on this host: kernel, cgroup
controllers, namespaces, overlayfs, br_netfilter, VXLAN, ip_forward, conntrack,
ip_vs, iptables/nft/ipset, inotify limits, swap, free disk in the data dir,
ports, resolv.conf, a nested cgroup. Each line is PASS, WARN or FAIL with the fix.
The server and worker run the same checks (without ports) before they start.`,
		Example: `  sudo monokube sysinfo
  monokube sysinfo -o json | jq '.[] | select(.status != "PASS")'
  monokube sysinfo --role worker`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(configPath, cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			opts, err := checkOptions(cfg, g.layout.Dir, role)
			if err != nil {
				return err
			}
			results := sysinfo.Run(opts)
			err = printReport(cmd.OutOrStdout(), output, results, func(r sysinfo.Result) string {
				return fmt.Sprintf("%s\t%s\t%s", r.Status, r.Name, r.Message)
			})
			if err != nil {
				return err
			}
			if sysinfo.Failed(results) != nil {
				return errors.New("a check failed")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", config.DefaultConfigPath, "ClusterConfig file (ports, datastore, proxy mode)")
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	cmd.Flags().StringVar(&role, "role", "all", "what to check for: server (control plane only), worker, or all (a server with --enable-worker)")
	return cmd
}

// checkOptions are the checks a role needs, with the ports its config uses.
func checkOptions(cfg *config.ClusterConfig, dataDir, role string) (sysinfo.Options, error) {
	server, node := true, true
	switch role {
	case "server":
		node = false
	case "worker":
		server = false
	case "all":
	default:
		return sysinfo.Options{}, fmt.Errorf("--role must be server, worker or all, got %q", role)
	}
	return sysinfo.For(cfg.Spec, dataDir, server, node).WithPorts(cfg.Spec), nil
}
