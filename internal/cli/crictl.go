package cli

import (
	"os"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/bundle"
)

func newCrictlCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "crictl [flags] COMMAND",
		Short: "Run crictl against this node's container runtime",
		Long: `Run crictl (cri-tools v1.34, carried in the binary) pointed at the CRI socket
of the node whose data dir is given by --data-dir (anywhere before a "--"),
MONOKUBE_DATA_DIR, or /var/lib/monokube.`,
		Example: `  sudo monokube crictl ps
  sudo monokube --data-dir /tmp/mk crictl pods
  sudo monokube crictl pods --data-dir /tmp/mk`,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			args, socket, err := g.runningNode(args)
			if err != nil {
				return err
			}
			// The running node has unpacked crictl; a client never writes
			// into its data dir.
			binDir, err := bundle.Unpacked(g.layout.BinRoot())
			if err != nil {
				return err
			}
			crictl := filepath.Join(binDir, "crictl")
			argv := append([]string{"crictl", "--runtime-endpoint", "unix://" + socket, "--image-endpoint", "unix://" + socket}, args...)
			// Replace this process, so exit codes and terminals behave as crictl's own.
			return syscall.Exec(crictl, argv, os.Environ())
		},
	}
}
