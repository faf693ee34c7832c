package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/bundle"
	"github.com/monokube/monokube/internal/node"
)

func newImagesCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "System images carried in this binary",
		Example: `  monokube images list
  sudo monokube images import busybox.tar`,
	}
	cmd.AddCommand(newImagesImportCommand(g))
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the images and executables this binary carries and imports at start",
		Long: `List the system images built into monokube (imported into containerd at a
node's start, without any registry, and again only when they change) and the
executables it unpacks into <data-dir>/bin. Image archives you put in
<data-dir>/images/ are imported too.`,
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
			fmt.Fprintln(w, "IMAGE\tPLATFORM\tARCHIVE\tSIZE")
			for _, image := range images {
				refs, err := image.References()
				if err != nil {
					return err
				}
				platform, err := image.Platform()
				if err != nil {
					return err
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%d KiB\n", strings.Join(refs, ","), platform, image.File, image.Size/1024)
			}
			fmt.Fprintf(w, "\nEXECUTABLE (linux/%s)\n", runtime.GOARCH)
			for _, name := range executables {
				fmt.Fprintln(w, name)
			}
			return w.Flush()
		},
	})
	return cmd
}

func newImagesImportCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE...",
		Short: "Import image archives (docker save / OCI tarballs) into this node",
		Long: `Import image archives into the node whose data dir is --data-dir. When the node
runs, they are imported into its containerd at once (a progress bar on a
terminal, a line every tenth elsewhere, and one log line per image) and pods
can use them with imagePullPolicy IfNotPresent; they are also kept in
<data-dir>/images/, which a start imports again when containerd lacks them,
so they survive a reset of containerd's store. Without a running node they
are only copied there.`,
		Example: `  docker save busybox:1 -o busybox.tar   # on a machine with a registry
  sudo monokube images import busybox.tar`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			layout := g.layout
			_, statErr := os.Stat(layout.ContainerdSocket())
			running := statErr == nil
			for _, archive := range args {
				kept := filepath.Join(layout.ImagesDir(), filepath.Base(archive))
				if err := copyFile(archive, kept); err != nil {
					return err
				}
				if !running {
					klog.InfoS("Node not running; the archive is imported at its next start", "archive", kept)
					continue
				}
				info, err := os.Stat(kept)
				if err != nil {
					return fmt.Errorf("image archive: %w", err)
				}
				progress := newImportProgress(cmd.ErrOrStderr(), filepath.Base(kept), info.Size())
				err = node.ImportFile(cmd.Context(), layout, kept, progress.update)
				progress.end(err)
				if err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// copyFile copies src into dst (creating dst's directory), unless they are
// the same file.
func copyFile(src, dst string) error {
	if same, _ := filepath.Abs(src); same == dst {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("open %s: %w", src, err)
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	out, err := os.Create(dst)
	if err != nil {
		return fmt.Errorf("create %s: %w", dst, err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}
