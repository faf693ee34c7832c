package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	ctrapp "github.com/containerd/containerd/v2/cmd/ctr/app"
	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/node"
)

func newCtrCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "ctr [flags] COMMAND",
		Short: "Run containerd's ctr against this node's containerd (namespace k8s.io)",
		Long: `Run the upstream ctr client built into monokube, pointed at the containerd of
the node whose data dir is given by a leading --data-dir, MONOKUBE_DATA_DIR, or
/var/lib/monokube, in the namespace the kubelet uses (k8s.io).`,
		Example: `  sudo monokube ctr images ls
  sudo monokube --data-dir /tmp/mk ctr containers ls`,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			_, socket, args, err := runningNode(args)
			if err != nil {
				return err
			}
			argv := append([]string{"ctr", "--address", socket, "--namespace", "k8s.io"}, args...)
			return ctrapp.New().Run(context.Background(), argv)
		},
	}
}

// runningNode takes a leading --data-dir from args and returns the data dir
// and containerd socket of the node running there, and the remaining args.
func runningNode(args []string) (dataDir, socket string, rest []string, err error) {
	dataDir, rest = takeDataDir(args)
	if dataDir, err = filepath.Abs(dataDir); err != nil {
		return "", "", nil, err
	}
	socket = node.NewPaths(dataDir).ContainerdSocket()
	if _, err := os.Stat(socket); err != nil {
		return "", "", nil, fmt.Errorf("no containerd socket at %s: is `monokube server --enable-worker` running with data dir %s? %w", socket, dataDir, err)
	}
	return dataDir, socket, rest, nil
}
