package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/fleet"
)

func newClusterCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Deploy, grow, upgrade and reset a whole cluster from one file, over SSH or on this machine",
		Long: `A cluster file lists the hosts (address, SSH user, port, key, role: server, worker
or server+worker, labels, taints) and the ClusterConfig they share. ` + "`cluster apply`" + `
brings every host to it: this binary copied and checked by SHA-256, the config,
the service (systemd or OpenRC), joined in order (first server, other servers one
at a time, then the workers in parallel). Hosts added join; hosts removed are
drained, deleted and reset; a newer binary is rolled out one server at a time,
then the workers in batches, each drained first. A second apply with nothing
changed changes nothing and says so.

With provider: local (or ` + "`cluster create`" + `) the hosts are nodes on this machine,
each in its own network and mount namespaces on a private bridge: a real
multi-node cluster without Docker.`,
		Example: `  monokube cluster apply -f cluster.yaml
  monokube cluster apply -f cluster.yaml --binary ./monokube-new   # rolling upgrade
  sudo monokube cluster create dev --servers 1 --workers 2
  kubectl --context dev get nodes
  sudo monokube cluster delete dev`,
	}
	cmd.AddCommand(newClusterApplyCommand(), newClusterResetCommand(), newClusterKubeconfigCommand(),
		newClusterBackupCommand(), newClusterRestoreCommand(),
		newClusterCreateCommand(), newClusterListCommand())
	for _, verb := range []string{"start", "stop", "delete"} {
		cmd.AddCommand(newClusterLocalVerbCommand(verb))
	}
	return cmd
}

// clusterBinary is the monokube to deploy: --binary, else this very
// program as users downloaded it (the launcher, not the unpacked part).
func clusterBinary(flag string) (string, error) {
	if flag != "" {
		return filepath.Abs(flag)
	}
	if launcher := os.Getenv("MONOKUBE_LAUNCHER"); launcher != "" {
		return launcher, nil
	}
	return os.Executable()
}

// userKubeconfig is where contexts of local clusters go.
func userKubeconfig() string {
	if env := os.Getenv("KUBECONFIG"); env != "" {
		return filepath.SplitList(env)[0]
	}
	home, err := os.UserHomeDir()
	if err != nil {
		home = "/root"
	}
	return filepath.Join(home, ".kube", "config")
}

func newClusterApplyCommand() *cobra.Command {
	var (
		file, binary, kubeconfig string
		insecureHostKey          bool
		maxUnavailable           int
		drainTimeout             time.Duration
	)
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Bring every host of a cluster file to what it says (install, join, upgrade, remove)",
		Example: `  monokube cluster apply -f cluster.yaml
  monokube cluster apply -f cluster.yaml --binary ./monokube-v2 --max-unavailable 2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := fleet.LoadFile(file)
			if err != nil {
				return err
			}
			bin, err := clusterBinary(binary)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if f.Spec.Provider == fleet.ProviderLocal {
				local := &fleet.Local{Binary: bin, Out: out, Kubeconfig: userKubeconfig(), MaxUnavailable: maxUnavailable, DrainTimeout: drainTimeout}
				return local.Apply(cmd.Context(), f)
			}
			if kubeconfig == "" {
				kubeconfig = strings.TrimSuffix(file, filepath.Ext(file)) + ".kubeconfig"
			}
			dial, err := fileDial(f, insecureHostKey)
			if err != nil {
				return err
			}
			applier := &fleet.Applier{
				File: f, Binary: bin, Out: out, Kubeconfig: kubeconfig,
				MaxUnavailable: maxUnavailable, DrainTimeout: drainTimeout, Dial: dial,
			}
			return applier.Apply(cmd.Context())
		},
	}
	addFileFlags(cmd, &file, &insecureHostKey)
	cmd.Flags().StringVar(&binary, "binary", "", "the monokube to deploy (default: this one); a newer one upgrades the cluster, rolling")
	cmd.Flags().StringVar(&kubeconfig, "kubeconfig-out", "", "where to write the admin kubeconfig (default: FILE's name with .kubeconfig)")
	cmd.Flags().IntVar(&maxUnavailable, "max-unavailable", 1, "workers upgraded at once")
	cmd.Flags().DurationVar(&drainTimeout, "drain-timeout", 5*time.Minute, "how long a node's drain may take before the upgrade stops (never forced)")
	return cmd
}

// fileDial reaches the hosts of a file: their local namespaces, or SSH.
func fileDial(f *fleet.File, insecureHostKey bool) (func(context.Context, fleet.Host) (fleet.Machine, error), error) {
	if f.Spec.Provider == fleet.ProviderLocal {
		c, err := fleet.LoadLocal(f.Metadata.Name)
		if err != nil {
			return nil, err
		}
		return func(_ context.Context, h fleet.Host) (fleet.Machine, error) { return c.Machine(h.Name) }, nil
	}
	return func(ctx context.Context, h fleet.Host) (fleet.Machine, error) {
		return fleet.DialSSH(ctx, sshOptions(h, insecureHostKey))
	}, nil
}

// fileApplier is an applier for a file's hosts, SSH or local.
func fileApplier(f *fleet.File, file string, out io.Writer, insecureHostKey bool) (*fleet.Applier, error) {
	bin, err := clusterBinary("")
	if err != nil {
		return nil, err
	}
	if f.Spec.Provider == fleet.ProviderLocal {
		return (&fleet.Local{Binary: bin, Out: out, Kubeconfig: userKubeconfig()}).Applier(f)
	}
	dial, err := fileDial(f, insecureHostKey)
	if err != nil {
		return nil, err
	}
	kubeconfig := strings.TrimSuffix(file, filepath.Ext(file)) + ".kubeconfig"
	return &fleet.Applier{File: f, Binary: bin, Out: out, Kubeconfig: kubeconfig, Dial: dial}, nil
}

// fileVerb is a command that works on a cluster file: it loads and checks
// the file (-f) before run.
func fileVerb(cmd *cobra.Command, run func(cmd *cobra.Command, f *fleet.File, file string, insecureHostKey bool, args []string) error) *cobra.Command {
	var file string
	var insecureHostKey bool
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		f, err := fleet.LoadFile(file)
		if err != nil {
			return err
		}
		return run(cmd, f, file, insecureHostKey, args)
	}
	addFileFlags(cmd, &file, &insecureHostKey)
	return cmd
}

// addFileFlags are the flags of every verb that works on a cluster file.
func addFileFlags(cmd *cobra.Command, file *string, insecureHostKey *bool) {
	cmd.Flags().StringVarP(file, "file", "f", "cluster.yaml", "the cluster file")
	cmd.Flags().BoolVar(insecureHostKey, "insecure-host-key", false, "accept any SSH host key (default: check ~/.ssh/known_hosts)")
}

func newClusterResetCommand() *cobra.Command {
	return fileVerb(&cobra.Command{
		Use:   "reset -f FILE",
		Short: "Stop, uninstall and reset monokube on every host of a cluster file (a local cluster: delete it)",
		Long: `Stop and uninstall the service on every host, workers first, run ` + "`monokube reset`" + `
there (containers, mounts, iptables rules, cgroups, the data dir) and remove the
binary, config and token files apply put there. Every host is tried; those that
fail are listed. All of the cluster's data is gone afterwards.`,
		Example: "  monokube cluster reset -f cluster.yaml",
		Args:    cobra.NoArgs,
	}, func(cmd *cobra.Command, f *fleet.File, _ string, insecureHostKey bool, _ []string) error {
		if f.Spec.Provider == fleet.ProviderLocal {
			return (&fleet.Local{Out: cmd.OutOrStdout(), Kubeconfig: userKubeconfig()}).Delete(cmd.Context(), f.Metadata.Name)
		}
		dial, err := fileDial(f, insecureHostKey)
		if err != nil {
			return err
		}
		return fleet.Reset(cmd.Context(), f, dial, cmd.OutOrStdout())
	})
}

func newClusterKubeconfigCommand() *cobra.Command {
	return fileVerb(&cobra.Command{
		Use:     "kubeconfig -f FILE",
		Short:   "Print the cluster's admin kubeconfig, fetched from its first server",
		Example: "  monokube cluster kubeconfig -f cluster.yaml > ~/.kube/prod.conf",
		Args:    cobra.NoArgs,
	}, func(cmd *cobra.Command, f *fleet.File, _ string, insecureHostKey bool, _ []string) error {
		dial, err := fileDial(f, insecureHostKey)
		if err != nil {
			return err
		}
		first := f.Servers()[0]
		m, err := dial(cmd.Context(), first)
		if err != nil {
			return err
		}
		defer m.Close()
		url := fmt.Sprintf("https://%s:%d", first.Address, f.Spec.Config.API.Port)
		if f.Spec.Provider == fleet.ProviderLocal {
			c, err := fleet.LoadLocal(f.Metadata.Name)
			if err != nil {
				return err
			}
			url = fmt.Sprintf("https://%s:%d", c.NodeIP(first.Name), f.Spec.Config.API.Port)
		}
		raw, err := fleet.AdminKubeconfig(cmd.Context(), m, url)
		if err != nil {
			return fmt.Errorf("host %s: %w", first.Name, err)
		}
		_, err = cmd.OutOrStdout().Write(raw)
		return err
	})
}

func newClusterBackupCommand() *cobra.Command {
	var saveDir string
	cmd := fileVerb(&cobra.Command{
		Use:   "backup -f FILE",
		Short: "Take a backup on the cluster's first running server and fetch it here",
		Long: `Run ` + "`monokube backup`" + ` on the first running server of the file (the datastore's
snapshot, the CA and keys, the config, the manifests) and copy the archive to
--save-path on this machine. Restore with ` + "`monokube cluster restore`" + `.`,
		Example: "  monokube cluster backup -f cluster.yaml --save-path ./backups",
		Args:    cobra.NoArgs,
	}, func(cmd *cobra.Command, f *fleet.File, file string, insecureHostKey bool, _ []string) error {
		applier, err := fileApplier(f, file, cmd.OutOrStdout(), insecureHostKey)
		if err != nil {
			return err
		}
		path, err := applier.Backup(cmd.Context(), saveDir)
		if err != nil {
			return err
		}
		fmt.Fprintln(cmd.OutOrStdout(), path)
		return nil
	})
	cmd.Flags().StringVar(&saveDir, "save-path", ".", "directory on this machine for the archive")
	return cmd
}

func newClusterRestoreCommand() *cobra.Command {
	return fileVerb(&cobra.Command{
		Use:   "restore -f FILE ARCHIVE",
		Short: "Rebuild the cluster from a backup: the first server restored, the others rejoined",
		Long: `Stop every host's service, reset the servers, restore the first server of the
file from ARCHIVE (from ` + "`cluster backup`" + ` or ` + "`monokube backup`" + `) and start it, start the
workers again (the CA is the same: they reconnect as they were), then join the
other servers anew, as apply does. Whatever was written after the backup is lost.`,
		Example: "  monokube cluster restore -f cluster.yaml ./backups/monokube-backup-20261207T080000.000Z.tar.gz",
		Args:    cobra.ExactArgs(1),
	}, func(cmd *cobra.Command, f *fleet.File, file string, insecureHostKey bool, args []string) error {
		applier, err := fileApplier(f, file, cmd.OutOrStdout(), insecureHostKey)
		if err != nil {
			return err
		}
		return applier.Restore(cmd.Context(), args[0])
	})
}

// sshOptions is how to reach a host of the file.
func sshOptions(h fleet.Host, insecure bool) fleet.SSHOptions {
	o := fleet.SSHOptions{Address: h.Address, Port: h.SSH.Port, User: h.SSH.User, KeyFile: expandHome(h.SSH.KeyFile), InsecureHostKey: insecure}
	if b := h.SSH.Bastion; b != nil {
		o.Bastion = &fleet.SSHOptions{Address: b.Address, Port: b.Port, User: b.User, KeyFile: expandHome(b.KeyFile), InsecureHostKey: insecure}
	}
	return o
}

func expandHome(path string) string {
	if rest, ok := strings.CutPrefix(path, "~/"); ok {
		if home, err := os.UserHomeDir(); err == nil {
			return filepath.Join(home, rest)
		}
	}
	return path
}

func newClusterCreateCommand() *cobra.Command {
	var servers, workers int
	var cgroupParent, binary string
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Start a multi-node cluster on this machine, each node in its own namespaces (root; no Docker)",
		Long: `Start a real cluster of --servers + --workers nodes on this machine: each node
runs this monokube in a network namespace of its own on a private bridge (no
route out of the machine; images come from ` + "`monokube images import`" + ` or a registry you
configure), with its own /etc/monokube, /var/lib/monokube and /run. Its admin
context goes into your kubeconfig as NAME. State: ` + fleet.LocalRoot + `/NAME.`,
		Example: `  sudo monokube cluster create dev --servers 1 --workers 2
  kubectl --context dev get nodes
  sudo monokube cluster delete dev`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if servers < 1 || workers < 0 {
				return errors.New("--servers must be at least 1 and --workers not negative")
			}
			if _, err := fleet.LoadLocal(args[0]); err == nil {
				return fmt.Errorf("a local cluster named %s exists (`monokube cluster start %s`, or delete it first)", args[0], args[0])
			}
			bin, err := clusterBinary(binary)
			if err != nil {
				return err
			}
			f := fleet.LocalFile(args[0], servers, workers)
			if cgroupParent != "" {
				f.Spec.Local.CgroupParent = cgroupParent
			}
			local := &fleet.Local{Binary: bin, Out: cmd.OutOrStdout(), Kubeconfig: userKubeconfig()}
			return local.Apply(cmd.Context(), f)
		},
	}
	cmd.Flags().IntVar(&servers, "servers", 1, "servers (each also a node); more than one use embedded etcd")
	cmd.Flags().IntVar(&workers, "workers", 0, "workers")
	cmd.Flags().StringVar(&cgroupParent, "cgroup-parent", "", "put every node's cgroups below this path (default /monokube-local)")
	cmd.Flags().StringVar(&binary, "binary", "", "the monokube the nodes run (default: this one)")
	return cmd
}

func newClusterListCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List the local clusters of this machine",
		Example: "  sudo monokube cluster list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			clusters, err := fleet.ListLocal()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tNODES\tSUBNET\tSTATE")
			for _, c := range clusters {
				fmt.Fprintf(w, "%s\t%d\t%s.0/24\t%s\n", c.Name, len(c.Nodes), c.Subnet, c.State(cmd.Context()))
			}
			return w.Flush()
		},
	}
}

func newClusterLocalVerbCommand(verb string) *cobra.Command {
	short := map[string]string{
		"start":  "Start a local cluster's nodes again (servers first)",
		"stop":   "Stop a local cluster's nodes (workers first); their containers keep running until delete",
		"delete": "Stop and reset every node of a local cluster and remove it: nothing is left behind",
	}[verb]
	return &cobra.Command{
		Use:     verb + " NAME",
		Short:   short,
		Example: "  sudo monokube cluster " + verb + " dev",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			local := &fleet.Local{Out: cmd.OutOrStdout(), Kubeconfig: userKubeconfig()}
			switch verb {
			case "start":
				return local.Start(cmd.Context(), args[0])
			case "stop":
				return local.Stop(cmd.Context(), args[0])
			default:
				return local.Delete(cmd.Context(), args[0])
			}
		},
	}
}
