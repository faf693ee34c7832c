package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/memory"
	"github.com/monokube/monokube/internal/node"
	"github.com/monokube/monokube/internal/worker"
)

func newWorkerCommand(g *globals) *cobra.Command {
	var (
		tokenFile string
		nodeIPs   []string
		flags     nodeFlags
	)
	cmd := &cobra.Command{
		Use:   "worker [TOKEN]",
		Short: "Join a cluster as a worker node and run it",
		Long: `Join the cluster a token from ` + "`monokube token create --role=worker`" + ` names, then run
containerd, the kubelet, kube-proxy and the pod network against it.

The token's CA pin is checked before anything is sent to the server. The
worker keeps its credentials in --data-dir, so a restart needs no token; the
kubelet renews its certificates through the cluster. A refused token (expired,
invalidated, for another cluster, garbled) or a node name another machine owns
stops the worker at once with the reason.`,
		Example: `  TOKEN=$(ssh server sudo monokube token create --role=worker)
  sudo monokube worker "$TOKEN"
  sudo monokube worker --token-file /etc/monokube/token --node-name edge-1 \
      --node-label tier=edge --node-taint dedicated=edge:NoSchedule
  sudo monokube worker                       # restart: uses the saved credentials`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			token, err := readToken(args, tokenFile)
			if err != nil {
				return err
			}
			var spec config.WorkerSpec
			if err := flags.apply(cmd, &spec); err != nil {
				return err
			}
			identity, err := node.NewIdentity(spec)
			if err != nil {
				return err
			}
			if err := checkNodeIPs(nodeIPs); err != nil {
				return err
			}
			return runResident(func(ctx context.Context) error {
				return (&worker.Worker{Layout: g.layout, Token: token, Identity: identity, NodeIPs: nodeIPs,
					RegistriesFile: flags.registries, OnReady: memory.Settled}).Run(ctx)
			})
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "read the join token from this file")
	cmd.Flags().StringSliceVar(&nodeIPs, "node-ip", nil, "address of this node; twice (or IPv4,IPv6) on a dual-stack cluster (default: the one it reaches the server from, and its other family's on the same interface)")
	flags.add(cmd, "")
	return cmd
}

// checkNodeIPs refuses a --node-ip that is not an address; the families
// are checked against the cluster's once it is known.
func checkNodeIPs(ips []string) error {
	for _, ip := range ips {
		if net.ParseIP(ip) == nil {
			return fmt.Errorf("--node-ip %q is not an IP address", ip)
		}
	}
	return nil
}

// readToken takes the token from the argument or --token-file; none is
// fine (a restart), both is a mistake.
func readToken(args []string, tokenFile string) (string, error) {
	switch {
	case len(args) == 1 && tokenFile != "":
		return "", errors.New("give the token as an argument or with --token-file, not both")
	case len(args) == 1:
		return args[0], nil
	case tokenFile != "":
		raw, err := os.ReadFile(tokenFile)
		if err != nil {
			return "", fmt.Errorf("--token-file: %w", err)
		}
		return strings.TrimSpace(string(raw)), nil
	}
	return "", nil
}
