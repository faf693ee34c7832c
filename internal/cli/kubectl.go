package cli

import (
	"os"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"

	"github.com/monokube/monokube/internal/datadir"
	"github.com/monokube/monokube/internal/pki"
)

func newKubectlCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "kubectl [flags] COMMAND",
		Short: "Run the embedded kubectl, pointed at this node's cluster",
		Long: `Run the upstream kubectl built into monokube. Without KUBECONFIG or
--kubeconfig it uses <data-dir>/pki/admin.conf (data dir from a leading
--data-dir, MONOKUBE_DATA_DIR, or /var/lib/monokube).`,
		Example: `  monokube kubectl get nodes
  monokube --data-dir /tmp/mk kubectl get ns`,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			args, err := g.passthrough(args)
			if err != nil {
				return err
			}
			runKubectl(g.layout, args)
			return nil
		},
	}
}

// RunKubectl runs kubectl as the multicall name `kubectl`, for the data dir
// in MONOKUBE_DATA_DIR or the default one.
func RunKubectl(args []string) {
	g := &globals{dataDir: defaultDataDir()}
	args, err := g.passthrough(args)
	if err != nil {
		util.CheckErr(err)
	}
	runKubectl(g.layout, args)
}

// runKubectl runs kubectl with args (without the program name) and exits
// with its status, as the kubectl binary does.
func runKubectl(layout datadir.Layout, args []string) {
	if os.Getenv("KUBECONFIG") == "" && !hasKubeconfigFlag(args) {
		admin := pki.Files{Dir: layout.PKIDir()}.AdminKubeconfig()
		if _, err := os.Stat(admin); err == nil {
			os.Setenv("KUBECONFIG", admin)
		}
	}
	command := kubectlcmd.NewDefaultKubectlCommandWithArgs(kubectlcmd.KubectlOptions{
		PluginHandler: kubectlcmd.NewDefaultPluginHandler([]string{"kubectl"}),
		Arguments:     append([]string{"kubectl"}, args...),
		ConfigFlags:   genericConfigFlags(),
		IOStreams:     kubectlStreams(),
	})
	command.SetArgs(args)
	if err := cli.RunNoErrOutput(command); err != nil {
		util.CheckErr(err)
	}
	os.Exit(0)
}

func hasKubeconfigFlag(args []string) bool {
	for _, arg := range args {
		if arg == "--kubeconfig" || strings.HasPrefix(arg, "--kubeconfig=") {
			return true
		}
	}
	return false
}
