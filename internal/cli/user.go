package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/monokube/monokube/internal/pki"
)

func newUserCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "user",
		Short:   "Manage user access to the cluster",
		Example: `  sudo monokube user create demo --groups development > demo.kubeconfig`,
	}
	cmd.AddCommand(newUserCreateCommand(g, "create NAME"))
	return cmd
}

// newUserCreateCommand is shared by `user create` and `kubeconfig create`
// (the name k0s users know).
func newUserCreateCommand(g *globals, use string) *cobra.Command {
	var (
		groups      []string
		expiry      time.Duration
		serverURL   string
		allowSystem bool
	)
	cmd := &cobra.Command{
		Use:   use,
		Short: "Print a kubeconfig for a user, with a client certificate signed by the cluster CA",
		Long: `Print a kubeconfig whose client certificate has CN=NAME and one O per group,
signed by the cluster CA in --data-dir. Only the kubeconfig goes to stdout. The
user can do nothing until RBAC grants it (a RoleBinding or ClusterRoleBinding for
the user or one of its groups). Works whether or not the server is running.
The private key exists only in the printed kubeconfig: keep it safe.`,
		Example: `  sudo monokube user create demo --groups development > demo.kubeconfig
  kubectl --kubeconfig demo.kubeconfig get pods    # Forbidden until a binding exists
  kubectl create clusterrolebinding dev-view --clusterrole=view --group=development`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files := pki.Files{Dir: g.layout.PKIDir()}
			clusterName, adminServer, err := adminCluster(files)
			if err != nil {
				return err
			}
			if serverURL == "" {
				if serverURL, err = g.layout.AdvertisedURL(); err != nil {
					serverURL = adminServer
				}
			}
			kubeconfig, err := pki.UserKubeconfig(files, pki.UserRequest{
				Name: args[0], Groups: groups, Validity: expiry, AllowSystem: allowSystem,
				ClusterName: clusterName, ServerURL: serverURL,
			})
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(kubeconfig)
			return err
		},
	}
	cmd.Flags().StringSliceVar(&groups, "groups", nil, "groups of the user, comma-separated (each becomes an O in the certificate)")
	cmd.Flags().DurationVar(&expiry, "expiry", pki.DefaultLeafValidity, "how long the certificate is valid")
	cmd.Flags().StringVar(&serverURL, "server", "", "API server URL in the kubeconfig (default: the server's advertised URL)")
	cmd.Flags().BoolVar(&allowSystem, "allow-system", false, `allow names and groups starting with "system:"`)
	return cmd
}

// adminCluster reads the cluster name and server from the admin kubeconfig,
// so user kubeconfigs name the cluster the same way.
func adminCluster(files pki.Files) (name, serverURL string, err error) {
	config, err := clientcmd.LoadFromFile(files.AdminKubeconfig())
	if err != nil {
		return "", "", fmt.Errorf("read admin kubeconfig (has `monokube server` run with this --data-dir?): %w", err)
	}
	for clusterName, cluster := range config.Clusters {
		return clusterName, cluster.Server, nil
	}
	return "", "", fmt.Errorf("admin kubeconfig %s names no cluster", files.AdminKubeconfig())
}
