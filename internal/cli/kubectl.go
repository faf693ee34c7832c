package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
--kubeconfig it uses <data-dir>/pki/admin.conf (data dir from --data-dir
anywhere before a "--", MONOKUBE_DATA_DIR, or /var/lib/monokube), and says
so when that file is missing rather than trying localhost:8080. With the
default data dir and no admin.conf there, ~/.kube/config is used if it
exists.`,
		Example: `  monokube kubectl get nodes
  monokube --data-dir /tmp/mk kubectl get ns
  monokube kubectl get ns --data-dir /tmp/mk`,
		DisableFlagParsing: true,
		RunE: func(_ *cobra.Command, args []string) error {
			args, chosen, err := g.passthrough(args)
			if err != nil {
				return err
			}
			if err := pointAtAdmin(g.layout, chosen, args); err != nil {
				return err
			}
			runKubectl(args)
			return nil
		},
	}
}

// RunKubectl runs kubectl as the multicall name `kubectl`, for the data dir
// in MONOKUBE_DATA_DIR or the default one.
func RunKubectl(args []string) {
	g := &globals{dataDir: defaultDataDir()}
	args, chosen, err := g.passthrough(args)
	if err == nil {
		err = pointAtAdmin(g.layout, chosen, args)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(1)
	}
	runKubectl(args)
}

// pointAtAdmin sets KUBECONFIG to the data dir's admin kubeconfig unless
// the user named a kubeconfig. Without one, kubectl would try
// localhost:8080 and say "connection refused", which hides the cause: so
// a missing admin.conf is an error that names it, except for commands
// that need no cluster (help, config, completion, version --client) and
// when the default data dir has none and ~/.kube/config exists (a
// machine that is only a client).
func pointAtAdmin(layout datadir.Layout, chosen bool, args []string) error {
	if os.Getenv("KUBECONFIG") != "" || hasKubeconfigFlag(args) {
		return nil
	}
	admin := pki.Files{Dir: layout.PKIDir()}.AdminKubeconfig()
	file, err := os.Open(admin)
	if err == nil {
		file.Close()
		return os.Setenv("KUBECONFIG", admin)
	}
	if needsNoCluster(args) {
		return nil
	}
	if !chosen {
		if home, herr := os.UserHomeDir(); herr == nil && fileExists(filepath.Join(home, ".kube", "config")) {
			return nil
		}
	}
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("cannot read the admin kubeconfig %s (permission denied): run as root, or pass --kubeconfig", admin)
	}
	return fmt.Errorf("no admin kubeconfig at %s: no server has run with data dir %s on this machine "+
		"(start one with `monokube server --data-dir %s`, pass --data-dir, or pass --kubeconfig)", admin, layout.Dir, layout.Dir)
}

// needsNoCluster reports whether kubectl can answer args without a
// server.
func needsNoCluster(args []string) bool {
	command := ""
	client := false
	for _, arg := range args {
		switch {
		case arg == "--":
			return false
		case arg == "-h" || arg == "--help":
			return true
		case arg == "--client" || arg == "--client=true":
			client = true
		case command == "" && !strings.HasPrefix(arg, "-"):
			command = arg
		}
	}
	switch command {
	case "", "help", "completion", "config", "plugin", "options", "kustomize":
		return true
	case "version":
		return client
	}
	return false
}

// runKubectl runs kubectl with args (without the program name) and exits
// with its status, as the kubectl binary does.
func runKubectl(args []string) {
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
