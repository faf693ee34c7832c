package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/node"
	"github.com/monokube/monokube/internal/worker"
)

func newWorkerCommand(g *globals) *cobra.Command {
	var (
		tokenFile  string
		cgroupRoot string
		nodeName   string
		nodeIP     string
		nodeLabels []string
		nodeTaints []string
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
			if nodeName == "" {
				if nodeName, err = node.DefaultName(); err != nil {
					return err
				}
			}
			if problems := validation.IsDNS1123Subdomain(nodeName); len(problems) > 0 {
				return fmt.Errorf("--node-name %q is not a valid node name: %s", nodeName, strings.Join(problems, "; "))
			}
			labels, err := config.ParseNodeLabels(nodeLabels)
			if err != nil {
				return fmt.Errorf("--node-label: %w", err)
			}
			taints, err := config.ParseNodeTaints(nodeTaints)
			if err != nil {
				return fmt.Errorf("--node-taint: %w", err)
			}
			if cgroupRoot != "" && !strings.HasPrefix(cgroupRoot, "/") {
				return fmt.Errorf("--cgroup-root %q must be an absolute cgroup path", cgroupRoot)
			}
			return runResident(g, func(ctx context.Context, dataDir string) error {
				return (&worker.Worker{
					DataDir: dataDir, Token: token, NodeName: nodeName, NodeIP: nodeIP, CgroupRoot: cgroupRoot, Labels: labels, Taints: taints,
				}).Run(ctx)
			})
		},
	}
	cmd.Flags().StringVar(&tokenFile, "token-file", "", "read the join token from this file")
	cmd.Flags().StringVar(&cgroupRoot, "cgroup-root", "", "put every cgroup of this node below this path")
	cmd.Flags().StringVar(&nodeName, "node-name", "", "name of this node (default: the hostname)")
	cmd.Flags().StringVar(&nodeIP, "node-ip", "", "address of this node (default: the one it reaches the server from)")
	addNodeRegistrationFlags(cmd, &nodeLabels, &nodeTaints)
	return cmd
}

// addNodeRegistrationFlags adds what a Node registers with, as k3s names it.
func addNodeRegistrationFlags(cmd *cobra.Command, labels, taints *[]string) {
	cmd.Flags().StringArrayVar(labels, "node-label", nil, "label the Node registers with, key=value (repeatable)")
	cmd.Flags().StringArrayVar(taints, "node-taint", nil, "taint the Node registers with, key=value:Effect (repeatable)")
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
