package cli

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/service"
)

// installOptions are install's own flags; every other argument goes to
// the service's command line.
type installOptions struct {
	dryRun, force bool
	init          string
	token         string
	args          []string
}

func parseInstallArgs(role string, raw []string) (installOptions, error) {
	var opts installOptions
	for i := 0; i < len(raw); i++ {
		arg := raw[i]
		switch {
		case arg == "--dry-run":
			opts.dryRun = true
		case arg == "--force":
			opts.force = true
		case arg == "--init" && i+1 < len(raw):
			i++
			opts.init = raw[i]
		case strings.HasPrefix(arg, "--init="):
			opts.init = strings.TrimPrefix(arg, "--init=")
		case role == "worker" && (arg == "--token-file" || arg == "--token") && i+1 < len(raw):
			i++
			token, err := tokenArg(arg, raw[i])
			if err != nil {
				return opts, err
			}
			opts.token = token
		case role == "worker" && strings.HasPrefix(arg, "MK1."):
			opts.token = arg
		default:
			opts.args = append(opts.args, arg)
		}
	}
	if opts.token != "" {
		if _, err := join.Parse(opts.token); err != nil {
			return opts, err
		}
	}
	return opts, nil
}

func tokenArg(flag, value string) (string, error) {
	if flag == "--token" {
		return value, nil
	}
	raw, err := os.ReadFile(value)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	return strings.TrimSpace(string(raw)), nil
}

func newInstallCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "install server|worker [flags for the service...]",
		Short: "Install monokube as a systemd or OpenRC service",
		Long: `Write a service for the running init system (systemd: /etc/systemd/system/
monokube[-worker].service; OpenRC: /etc/init.d/monokube[-worker]) that runs
` + "`monokube server|worker`" + ` with the arguments given here, then enable and start it.
A worker's token goes into /etc/monokube/worker-token (0600), never into the
service file. The service reads /etc/monokube/monokube[-worker].env.
install's own flags: --dry-run (print the file and its path, write nothing),
--force (replace an existing service), --init systemd|openrc (render for that
init system, e.g. with --dry-run on a machine without it).`,
		Example: `  sudo monokube install server --enable-worker --config /etc/monokube/monokube.yaml
  sudo monokube install worker "$TOKEN" --node-name edge-1
  monokube install server --dry-run --init openrc`,
	}
	for _, role := range []string{"server", "worker"} {
		cmd.AddCommand(&cobra.Command{
			Use:                role + " [flags...]",
			Short:              "Install the " + role + " service",
			Example:            "  sudo monokube install " + role + " --dry-run",
			DisableFlagParsing: true,
			RunE: func(cmd *cobra.Command, raw []string) error {
				if len(raw) > 0 && (raw[0] == "--help" || raw[0] == "-h") {
					return cmd.Help()
				}
				return runInstall(cmd, role, raw)
			},
		})
	}
	return cmd
}

func runInstall(cmd *cobra.Command, role string, raw []string) error {
	opts, err := parseInstallArgs(role, raw)
	if err != nil {
		return err
	}
	// The service runs the program the user downloaded (the launcher, which
	// says where it is), not this unpacked copy: replacing the download
	// then upgrades the service.
	binary := os.Getenv("MONOKUBE_LAUNCHER")
	if binary == "" {
		if binary, err = os.Executable(); err != nil {
			return err
		}
	}
	if binary, err = filepath.EvalSymlinks(binary); err != nil {
		return err
	}
	spec := service.Spec{Role: role, Binary: binary, Args: opts.args}
	if opts.token != "" {
		spec.TokenFile = service.TokenFile
	}
	init := service.Detect()
	if opts.init != "" {
		init = service.Init(opts.init)
		if init != service.Systemd && init != service.OpenRC {
			return fmt.Errorf("--init must be systemd or openrc, got %q", opts.init)
		}
	}
	if init == service.None {
		if !opts.dryRun {
			return fmt.Errorf("no supported init system (systemd or OpenRC) is running here; run this instead, under your own supervisor:\n  %s", strings.Join(spec.CommandLine(), " "))
		}
		init = service.Systemd
		fmt.Fprintln(cmd.ErrOrStderr(), "note: no init system is running here; showing the systemd unit")
	}
	if opts.dryRun {
		content, err := spec.Render(init)
		if err != nil {
			return err
		}
		fmt.Fprintf(cmd.OutOrStdout(), "# %s (dry run: nothing written)\n%s", spec.Path(init), content)
		if opts.token != "" {
			fmt.Fprintf(cmd.OutOrStdout(), "# the token would go to %s (0600)\n", service.TokenFile)
		}
		return nil
	}
	if err := service.Install(init, spec, opts.token, opts.force); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "installed and started %s (%s)\n", spec.Name(), spec.Path(init))
	return nil
}

func newServiceControlCommands() []*cobra.Command {
	var commands []*cobra.Command
	for _, action := range []string{"start", "stop", "uninstall"} {
		commands = append(commands, &cobra.Command{
			Use:     action + " [server|worker]",
			Short:   strings.ToUpper(action[:1]) + action[1:] + " the installed monokube service (default: server)",
			Example: "  sudo monokube " + action + " worker",
			Args:    cobra.MaximumNArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				role := "server"
				if len(args) == 1 {
					role = args[0]
				}
				if role != "server" && role != "worker" {
					return errors.New("the service is server or worker")
				}
				spec := service.Spec{Role: role}
				if action == "uninstall" {
					return service.Uninstall(service.Detect(), spec)
				}
				return service.Control(service.Detect(), spec.Name(), action)
			},
		})
	}
	return commands
}
