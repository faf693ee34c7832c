package cli

import (
	"context"
	"fmt"
	"os"

	ctrapp "github.com/containerd/containerd/v2/cmd/ctr/app"
	"github.com/spf13/cobra"
)

func newCtrCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "ctr [flags] COMMAND",
		Short: "Run containerd's ctr against this node's containerd (namespace k8s.io)",
		Long: `Run the upstream ctr client built into monokube, pointed at the containerd of
the node whose data dir is given by --data-dir (anywhere before a "--"), MONOKUBE_DATA_DIR, or
/var/lib/monokube, in the namespace the kubelet uses (k8s.io).`,
		Example: `  sudo monokube ctr images ls
  sudo monokube --data-dir /tmp/mk ctr containers ls
  sudo monokube ctr containers ls --data-dir /tmp/mk`,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			args, socket, err := g.runningNode(args)
			if err != nil {
				return err
			}
			argv := append([]string{"ctr", "--address", socket, "--namespace", "k8s.io"}, args...)
			return ctrapp.New().Run(context.Background(), argv)
		},
	}
}

// runningNode takes --data-dir from args and returns the remaining args
// and the containerd socket of the node running there.
func (g *globals) runningNode(args []string) (rest []string, socket string, err error) {
	if rest, _, err = g.passthrough(args); err != nil {
		return nil, "", err
	}
	socket = g.layout.ContainerdSocket()
	if _, err := os.Stat(socket); err != nil {
		return nil, "", fmt.Errorf("no containerd socket at %s: is a node (`server --enable-worker` or `worker`) running with data dir %s? %w", socket, g.layout.Dir, err)
	}
	return rest, socket, nil
}
