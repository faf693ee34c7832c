package cli

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/pki"
)

func newCertsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "certs",
		Short:   "Inspect the cluster's certificates",
		Example: `  sudo monokube certs status`,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List every certificate of this server or worker with its expiry",
		Long: `List every certificate in <data-dir>/pki (a server's) and the node's
(<data-dir>/agent/pki, <data-dir>/kubelet/pki) with subject, issuer and expiry.
A running server re-issues each leaf certificate it signs (its own, etcd's
and its node's) when less than spec.pki.renewPercentLeft of its life
remains, and every component picks up the new files without a restart; CAs
are never replaced. A worker's kubelet and kube-proxy certificates rotate
through the cluster at 70-90% of their life. RENEWAL is when that happens
next (for a rotated certificate: the earliest moment).`,
		Example: "  sudo monokube certs status\n  sudo monokube certs status --data-dir /var/lib/monokube   # on a worker too",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			statuses, err := pki.Status(pki.Files{Dir: g.layout.PKIDir()},
				pki.Files{Dir: g.layout.AgentPKIDir()}, pki.Files{Dir: g.layout.KubeletPKIDir()})
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tSUBJECT\tISSUER\tEXPIRES\tREMAINING\tRENEWAL")
			for _, s := range statuses {
				name := s.Name
				if s.IsCA {
					name += " (CA)"
				}
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", name, s.Subject, s.Issuer,
					s.NotAfter.UTC().Format(time.RFC3339), remaining(s.NotAfter), renewal(s))
			}
			return w.Flush()
		},
	})
	return cmd
}

func remaining(notAfter time.Time) string {
	left := time.Until(notAfter)
	switch {
	case left <= 0:
		return "EXPIRED"
	case left > 48*time.Hour:
		return fmt.Sprintf("%dd", int(left.Hours()/24))
	default:
		return left.Round(time.Second).String()
	}
}

func renewal(s pki.CertificateStatus) string {
	switch {
	case s.IsCA:
		return "never (CA)"
	case !time.Now().Before(s.RenewalDue):
		return "due now"
	case s.Rotated:
		return "from " + s.RenewalDue.UTC().Format(time.RFC3339) + " (rotated)"
	default:
		return s.RenewalDue.UTC().Format(time.RFC3339) + " (in " + remaining(s.RenewalDue) + ")"
	}
}
