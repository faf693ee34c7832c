package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/backup"
	"github.com/monokube/monokube/internal/config"
)

func newBackupCommand(g *globals) *cobra.Command {
	var configPath, saveDir string
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Write a backup of this server into one file, while it runs",
		Long: `Write one archive: a consistent snapshot of the datastore (SQLite or the
embedded etcd), the cluster's CA, service-account and encryption keys, the
config file and the manifests directory. Only the archive's path goes to
stdout. An external PostgreSQL, MySQL or etcd is not included: back it up
with its own tools. Restore with ` + "`monokube restore`" + `.`,
		Example: `  sudo monokube backup --save-path /srv/backups
  sudo monokube backup --data-dir /srv/mk      # the datastore and config the server on /srv/mk started with`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := os.Stat(g.layout.PKIDir()); err != nil {
				return fmt.Errorf("%s holds no server (%w); is --data-dir right?", g.layout.Dir, err)
			}
			storage, configFile, err := backupSource(g, configPath, cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			if saveDir == "" {
				saveDir = g.layout.SnapshotsDir()
			}
			path, err := backup.Create(cmd.Context(), backup.Request{
				Layout: g.layout, Storage: storage, ConfigFile: configFile, SaveDir: saveDir, Prefix: "monokube-backup",
			})
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), path)
			return nil
		},
	}
	cmd.Flags().StringVar(&configPath, "config", config.DefaultConfigPath,
		"the server's ClusterConfig file (default: the one the server on --data-dir last started with)")
	cmd.Flags().StringVar(&saveDir, "save-path", "", "directory for the archive (default <data-dir>/snapshots)")
	return cmd
}

// backupSource is the datastore to snapshot and the config file to keep:
// those of --config when given, else those the server on the data dir
// recorded at its last start, else the default config's.
func backupSource(g *globals, configPath string, explicit bool) (config.StorageSpec, string, error) {
	if !explicit {
		record, ok, err := backup.RecordedServer(g.layout)
		if err != nil {
			return config.StorageSpec{}, "", err
		}
		if ok {
			return record.StorageSpec(), record.ConfigFile, nil
		}
	}
	cfg, err := loadConfig(configPath, explicit)
	if err != nil {
		return config.StorageSpec{}, "", err
	}
	return cfg.Spec.Storage, configPath, nil
}

func newRestoreCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "restore FILE",
		Short: "Restore a backup into an empty data dir",
		Long: `Unpack an archive from ` + "`monokube backup`" + ` into --data-dir, which must be empty
or absent: the archive is checked whole first, and a damaged, foreign or
other-version archive is refused with nothing written. Then start the server
on that data dir with the config it ran with (the archive's copy is in
<data-dir>/restored/monokube.yaml). It has the same objects and the same CA,
so existing workers reconnect without new tokens.`,
		Example: `  sudo monokube restore /srv/backups/monokube-backup-20261130T031500.000Z.tar.gz --data-dir /var/lib/monokube
  sudo monokube server --config /etc/monokube/monokube.yaml`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			manifest, err := backup.Restore(args[0], g.layout)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "restored the %s backup made %s into %s; start it with `monokube server --data-dir %s --config <the config it ran with>`\n",
				manifest.Storage, manifest.Created.Format("2006-01-02 15:04:05 MST"), g.layout.Dir, g.layout.Dir)
			return nil
		},
	}
}
