package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/pki"
)

func newKubeconfigCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "kubeconfig",
		Short: "Print kubeconfigs for this cluster",
		Example: `  sudo monokube kubeconfig admin > ~/.kube/config
  sudo monokube kubeconfig create demo --groups development > demo.kubeconfig`,
	}
	cmd.AddCommand(newKubeconfigAdminCommand(g), newUserCreateCommand(g, "create NAME"))
	return cmd
}

func newKubeconfigAdminCommand(g *globals) *cobra.Command {
	var serverURL string
	cmd := &cobra.Command{
		Use:   "admin",
		Short: "Print the admin kubeconfig (group system:masters)",
		Long: `Print the cluster-admin kubeconfig of the server whose state is in --data-dir.
Its server address is the one a remote user should use (the advertised API
address), unless --server gives another.`,
		Example: `  sudo monokube kubeconfig admin > ~/.kube/config
  sudo monokube kubeconfig admin --server https://k8s.example.com:6443`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			files := pki.Files{Dir: g.layout.PKIDir()}
			path := files.AdminKubeconfig()
			if _, err := os.Stat(path); err != nil {
				return fmt.Errorf("no admin kubeconfig at %s (has `monokube server --data-dir %s` run yet?): %w", path, g.layout.Dir, err)
			}
			if serverURL == "" {
				url, err := g.layout.AdvertisedURL()
				if err != nil {
					return err
				}
				serverURL = url
			}
			out, err := pki.WithServer(path, serverURL)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&serverURL, "server", "", "API server URL to put in the kubeconfig")
	return cmd
}
