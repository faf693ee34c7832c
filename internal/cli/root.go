// Package cli defines monokube's commands: flags, help with examples, and a
// call into the package that does the work. One file per command.
package cli

import (
	"errors"
	"flag"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/datadir"
)

// globals are flags every command understands, and what follows from them.
type globals struct {
	dataDir string
	// layout is --data-dir made absolute, set before any command runs.
	layout datadir.Layout
}

// resolve fixes the layout from --data-dir, once per command.
func (g *globals) resolve() (err error) {
	g.layout, err = datadir.New(g.dataDir)
	return err
}

// passthrough is for commands that hand their arguments to another tool
// (kubectl, ctr, crictl): cobra does not parse their flags, so a
// --data-dir meant for monokube is taken out here, wherever it stands
// before a "--" (none of those tools has a flag of that name; what
// follows "--" is a command for a container and is left alone). It
// reports whether the data dir was chosen (the flag or MONOKUBE_DATA_DIR)
// rather than the default.
func (g *globals) passthrough(args []string) (rest []string, chosen bool, err error) {
	chosen = os.Getenv("MONOKUBE_DATA_DIR") != ""
	rest = make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			rest = append(rest, args[i:]...)
			break
		}
		if value, ok := strings.CutPrefix(arg, "--data-dir="); ok {
			g.dataDir, chosen = value, true
			continue
		}
		if arg == "--data-dir" {
			if i+1 == len(args) {
				return nil, false, errors.New("--data-dir needs a directory")
			}
			g.dataDir, chosen = args[i+1], true
			i++
			continue
		}
		rest = append(rest, arg)
	}
	return rest, chosen, g.resolve()
}

// NewRoot returns the monokube command tree.
func NewRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "monokube",
		Short: "A complete Kubernetes distribution in one binary",
		Long: `monokube turns a Linux machine into a Kubernetes control plane, a worker, or both.
The API server, scheduler, controller-manager and datastore (kine on SQLite)
run inside this one process; nothing else needs to be installed.`,
		Example: `  sudo monokube server                 # start a control plane in /var/lib/monokube
  monokube kubectl get ns              # talk to it with the embedded kubectl`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return g.resolve()
		},
	}
	root.PersistentFlags().StringVar(&g.dataDir, "data-dir", defaultDataDir(),
		"directory holding all of this node's state (env MONOKUBE_DATA_DIR)")
	addKlogFlags(root)
	// Cobra merges pflag.CommandLine into the root; the embedded Kubernetes
	// packages register flags there (--version) that mean nothing here.
	pflag.CommandLine = pflag.NewFlagSet(os.Args[0], pflag.ExitOnError)
	root.AddCommand(
		newServerCommand(g),
		newWorkerCommand(g),
		newVersionCommand(),
		newDefaultConfigCommand(),
		newConfigCommand(),
		newKubeconfigCommand(g),
		newKubectlCommand(g),
		newUserCommand(g),
		newCertsCommand(g),
		newCtrCommand(g),
		newCrictlCommand(g),
		newImagesCommand(g),
		newResetCommand(g),
		newEtcdCommand(g),
		newBackupCommand(g),
		newRestoreCommand(g),
		newSysinfoCommand(g),
		newCheckCommand(g),
		newSecretsEncryptCommand(g),
		newInstallCommand(),
		newStatusCommand(g),
		newTokenCommand(g),
		newClusterCommand(),
		newAPIBalancerCommand(),
	)
	root.AddCommand(newServiceControlCommands()...)
	return root
}

func defaultDataDir() string {
	if dir := os.Getenv("MONOKUBE_DATA_DIR"); dir != "" {
		return dir
	}
	return config.DefaultDataDir
}

// addKlogFlags exposes klog's verbosity as --v, shared by our code and the
// embedded Kubernetes components.
func addKlogFlags(root *cobra.Command) {
	klogFlags := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(klogFlags)
	root.PersistentFlags().AddGoFlag(klogFlags.Lookup("v"))
}
