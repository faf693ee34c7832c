package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/config"
)

func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with monokube config files",
		Example: `  monokube default-config > monokube.yaml
  monokube config validate --config monokube.yaml`,
	}
	cmd.AddCommand(newConfigValidateCommand())
	return cmd
}

func newConfigValidateCommand() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check a config file and report every error with its field and line",
		Example: `  monokube config validate --config /etc/monokube/monokube.yaml
  monokube default-config | monokube config validate --config /dev/stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if _, err := config.Load(path); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid\n", path)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", config.DefaultConfigPath, "config file to check")
	return cmd
}
