package cli

import (
	"context"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/monokube/monokube/internal/datastore"
)

func newEtcdCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "etcd",
		Short: "Inspect and change the embedded etcd's members (run on a server)",
		Example: `  sudo monokube etcd member-list
  sudo monokube etcd leave                 # on a server about to be retired
  sudo monokube etcd member-remove server-3   # a server that is gone for good`,
	}
	cmd.AddCommand(
		&cobra.Command{
			Use:     "member-list",
			Short:   "List the etcd members: ID, name, peer URL, client URL, voter or learner",
			Example: "  sudo monokube etcd member-list --data-dir /var/lib/monokube",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return withEtcd(cmd.Context(), g, func(ctx context.Context, client *clientv3.Client) error {
					members, err := datastore.Members(ctx, client)
					if err != nil {
						return err
					}
					w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
					fmt.Fprintln(w, "ID\tNAME\tPEER\tCLIENT\tROLE")
					for _, m := range members {
						role := "voter"
						if m.Learner {
							role = "learner"
						}
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", m.ID, m.Name, m.PeerURL, m.ClientURL, role)
					}
					return w.Flush()
				})
			},
		},
		&cobra.Command{
			Use:     "member-remove NAME",
			Short:   "Remove another server's member (by name or ID) from etcd",
			Example: "  sudo monokube etcd member-remove server-3",
			Args:    cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return withEtcd(cmd.Context(), g, func(ctx context.Context, client *clientv3.Client) error {
					if err := datastore.RemoveMember(ctx, client, args[0]); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "member %s removed\n", args[0])
					return nil
				})
			},
		},
		&cobra.Command{
			Use:   "leave",
			Short: "Remove this server's member from etcd (stop the server first or right after)",
			Long: `Remove this server's etcd member, so the others keep quorum without it.
Afterwards this data dir can only rejoin after ` + "`monokube reset`" + ` and server --token.`,
			Example: "  sudo monokube etcd leave && sudo monokube reset",
			Args:    cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return withEtcd(cmd.Context(), g, func(ctx context.Context, client *clientv3.Client) error {
					status, err := client.Status(ctx, client.Endpoints()[0])
					if err != nil {
						return fmt.Errorf("find this server's member: %w", err)
					}
					id := fmt.Sprintf("%x", status.Header.MemberId)
					if err := datastore.RemoveMember(ctx, client, id); err != nil {
						return err
					}
					fmt.Fprintf(cmd.OutOrStdout(), "member %s left the cluster\n", id)
					return nil
				})
			},
		},
	)
	return cmd
}

// withEtcd connects to this server's embedded etcd with its client certificate.
func withEtcd(ctx context.Context, g *globals, run func(context.Context, *clientv3.Client) error) error {
	client, err := datastore.LocalEtcd(g.layout)
	if err != nil {
		return err
	}
	defer client.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return run(ctx, client)
}
