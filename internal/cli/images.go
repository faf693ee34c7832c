package cli

import (
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/bundle"
)

func newImagesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "System images carried in this binary",
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the images and executables this binary carries and imports at start",
		Long: `List the system images built into monokube (imported into containerd at every
node start, without any registry) and the executables it unpacks into
<data-dir>/bin. Image archives you put in <data-dir>/images/ are imported too.`,
		Example: "  monokube images list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			images, err := bundle.Images()
			if err != nil {
				return err
			}
			executables, err := bundle.Executables()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "IMAGE\tARCHIVE\tSIZE")
			for _, image := range images {
				fmt.Fprintf(w, "%s\t%s\t%d KiB\n", strings.Join(image.References, ","), image.File, image.Size/1024)
			}
			fmt.Fprintln(w, "\nEXECUTABLE")
			for _, name := range executables {
				fmt.Fprintln(w, name)
			}
			return w.Flush()
		},
	})
	return cmd
}
