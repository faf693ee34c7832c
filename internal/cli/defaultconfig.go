package cli

import (
	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/monokube/monokube/internal/config"
)

func newDefaultConfigCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "default-config",
		Short: "Print the complete default ClusterConfig",
		Long: `Print the complete default ClusterConfig as YAML: a starting point for
/etc/monokube/monokube.yaml. Every field can be changed; flags override it.`,
		Example: "  monokube default-config > /etc/monokube/monokube.yaml",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out, err := yaml.Marshal(config.Default())
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
}
