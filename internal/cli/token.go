package cli

import (
	"fmt"
	"net"
	"net/url"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/cert"

	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/internal/kubeclient"
	"github.com/monokube/monokube/internal/pki"
)

func newTokenCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Manage join tokens (run on a server)",
		Example: `  TOKEN=$(sudo monokube token create --role=worker --expiry=2h)
  sudo monokube token list
  sudo monokube token invalidate abc123`,
	}
	cmd.AddCommand(newTokenCreateCommand(g), newTokenListCommand(g), newTokenInvalidateCommand(g))
	return cmd
}

func newTokenCreateCommand(g *globals) *cobra.Command {
	var (
		role        string
		expiry      time.Duration
		description string
	)
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Print a new join token (only the token goes to stdout)",
		Long: `Print a join token: the server address, a pin of the cluster CA (a node that
reaches an impostor refuses it) and a bootstrap token the cluster checks. The
cluster deletes it at expiry; ` + "`token invalidate`" + ` deletes it sooner.`,
		Example: `  TOKEN=$(sudo monokube token create --role=worker --expiry=2h)
  sudo monokube token create --role=controller > controller-token   # for server --token-file`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if role != join.RoleWorker && role != join.RoleController {
				return fmt.Errorf("--role must be %s or %s, got %q", join.RoleWorker, join.RoleController, role)
			}
			client, err := adminClient(g)
			if err != nil {
				return err
			}
			ca, err := cert.CertsFromFile(pki.Files{Dir: g.layout.PKIDir()}.CACert())
			if err != nil {
				return fmt.Errorf("read cluster CA: %w", err)
			}
			serverURL, err := g.layout.AdvertisedURL()
			if err != nil {
				return err
			}
			bootstrap, expires, err := join.CreateBootstrapToken(cmd.Context(), client, role, expiry, description)
			if err != nil {
				return err
			}
			if role == join.RoleController {
				sealed, err := join.SealKeys(g.layout.PKIDir(), bootstrap)
				if err != nil {
					return err
				}
				if err := join.PublishKeys(cmd.Context(), client, bootstrap, sealed); err != nil {
					return err
				}
			}
			servers := join.APIServers(cmd.Context(), client, serverURL)
			token := join.Token{Role: role, Servers: servers, CAHash: join.CAHash(ca[0]), Bootstrap: bootstrap, Expires: expires}
			fmt.Fprintln(cmd.OutOrStdout(), token.String())
			// Warnings go to stderr: stdout stays exactly the token.
			if u, err := url.Parse(serverURL); err == nil {
				if ip := net.ParseIP(u.Hostname()); ip != nil && ip.IsLoopback() {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: this server advertises %s, which other machines cannot reach; set spec.api.address (or --api-address) to an address they can\n", serverURL)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&role, "role", join.RoleWorker, "what the joining machine becomes: worker or controller")
	cmd.Flags().DurationVar(&expiry, "expiry", 24*time.Hour, "how long the token is valid (0: until invalidated)")
	cmd.Flags().StringVar(&description, "description", "", "a note shown by token list")
	return cmd
}

func newTokenListCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "list",
		Short:   "List join tokens that are still valid",
		Example: "  sudo monokube token list",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			client, err := adminClient(g)
			if err != nil {
				return err
			}
			tokens, err := join.ListBootstrapTokens(cmd.Context(), client)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "ID\tROLE\tEXPIRES\tDESCRIPTION")
			for _, token := range tokens {
				expires := "never"
				if !token.Expiration.IsZero() {
					expires = token.Expiration.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", token.ID, token.Role, expires, token.Description)
			}
			return w.Flush()
		},
	}
}

func newTokenInvalidateCommand(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:     "invalidate ID",
		Short:   "Delete a join token so no machine can join with it any more",
		Example: "  sudo monokube token invalidate abc123",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			client, err := adminClient(g)
			if err != nil {
				return err
			}
			if err := join.InvalidateBootstrapToken(cmd.Context(), client, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "token %s invalidated\n", args[0])
			return nil
		},
	}
}

// adminClient talks to the local server with the admin kubeconfig.
func adminClient(g *globals) (kubernetes.Interface, error) {
	client, err := kubeclient.New(pki.Files{Dir: g.layout.PKIDir()}.AdminKubeconfig(), kubeclient.WithTimeout(10*time.Second))
	if err != nil {
		return nil, fmt.Errorf("%w (run this on a server, as root)", err)
	}
	return client, nil
}
