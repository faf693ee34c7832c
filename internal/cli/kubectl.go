package cli

import (
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/component-base/cli"
	kubectlcmd "k8s.io/kubectl/pkg/cmd"
	"k8s.io/kubectl/pkg/cmd/util"

	"github.com/monokube/monokube/internal/pki"
)

func newKubectlCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "kubectl [flags] COMMAND",
		Short: "Run the embedded kubectl, pointed at this node's cluster",
		Long: `Run the upstream kubectl built into monokube. Without KUBECONFIG or
--kubeconfig it uses <data-dir>/pki/admin.conf (data dir from a leading
--data-dir, MONOKUBE_DATA_DIR, or /var/lib/monokube).`,
		Example: `  monokube kubectl get nodes
  monokube --data-dir /tmp/mk kubectl get ns`,
		DisableFlagParsing: true,
		Run: func(_ *cobra.Command, args []string) {
			RunKubectl(args)
		},
	}
}

// RunKubectl runs kubectl with args (without the program name) and exits
// with its status, as the kubectl binary does.
func RunKubectl(args []string) {
	dataDir, args := takeDataDir(args)
	if os.Getenv("KUBECONFIG") == "" && !hasKubeconfigFlag(args) {
		admin := pki.Files{Dir: filepath.Join(dataDir, "pki")}.AdminKubeconfig()
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

// takeDataDir removes a leading --data-dir flag meant for monokube.
func takeDataDir(args []string) (string, []string) {
	dataDir := defaultDataDir()
	switch {
	case len(args) >= 2 && args[0] == "--data-dir":
		return args[1], args[2:]
	case len(args) >= 1 && strings.HasPrefix(args[0], "--data-dir="):
		return strings.TrimPrefix(args[0], "--data-dir="), args[1:]
	}
	return dataDir, args
}

func hasKubeconfigFlag(args []string) bool {
	for _, arg := range args {
		if arg == "--kubeconfig" || strings.HasPrefix(arg, "--kubeconfig=") {
			return true
		}
	}
	return false
}
