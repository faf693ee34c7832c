package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/version"
)

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:     "version",
		Short:   "Print monokube's version and the Kubernetes version it embeds",
		Example: "  monokube version",
		Args:    cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), version.String())
		},
	}
}
