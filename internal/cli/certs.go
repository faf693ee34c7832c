package cli

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/internal/carotation"
	"github.com/monokube/monokube/internal/kubeclient"
	"github.com/monokube/monokube/internal/pki"
)

func newCertsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "certs",
		Short:   "Inspect the cluster's certificates and replace its CA",
		Example: "  sudo monokube certs status\n  sudo monokube certs rotate-ca && sudo monokube certs rotate-ca --finish",
	}
	cmd.AddCommand(newRotateCACommand(g))
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "List every certificate of this server or worker with its expiry",
		Long: `List every certificate in <data-dir>/pki (a server's) and the node's
(<data-dir>/agent/pki, <data-dir>/kubelet/pki) with subject, issuer and expiry.
A running server re-issues each leaf certificate it signs (its own, etcd's
and its node's) when less than spec.pki.renewPercentLeft of its life
remains, and every component picks up the new files without a restart; CAs
are replaced only by "certs rotate-ca". A worker's kubelet and kube-proxy certificates rotate
through the cluster at 70-90% of their life. RENEWAL is when that happens
next (for a rotated certificate: the earliest moment).`,
		Example: "  sudo monokube certs status\n  sudo monokube certs status --data-dir /var/lib/monokube   # on a worker too",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := printCARotation(cmd, g); err != nil {
				return err
			}
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

func newRotateCACommand(g *globals) *cobra.Command {
	var finish, dropOldKeys bool
	var caCert, caKey string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "rotate-ca",
		Short: "Replace the cluster CA and the service-account signing key on a running cluster",
		Long: `Replaces the cluster CA (a new one, or --ca-cert/--ca-key you bring, e.g. an
intermediate of your company CA) and the service-account signing key, in two
commands run on any one server, as root:

  rotate-ca           stage trusted: the new CA is trusted beside the old one on
                      every server and node; then stage rotated: it signs every
                      certificate (servers re-issue theirs, nodes get theirs
                      through the cluster) and the new key signs every
                      service-account token. The old CA is still trusted.
  rotate-ca --finish  stage finished: the old CA is trusted nowhere.

Between the two, hand out new kubeconfigs (monokube kubeconfig admin, monokube
kubeconfig create) and join tokens: from stage rotated on, a join token made before is
refused with "CA rotated", and after --finish so is every kubeconfig the old CA
signed. Tokens the old service-account key signed keep working: that key still
verifies, until --drop-old-service-account-keys (run it once no such token is
in use: the kubelet renews pods' tokens within about an hour).

Each stage restarts the monokube process of every server (one at a time, so
three servers keep the API up) and every Ready node (pods keep running): some
of what changes is read by Kubernetes components only at start. A node that is
down during --finish must join again with a new token. The etcd and
front-proxy CAs are not rotated (only the servers themselves use them).
Interrupted, run the same command again: it goes on from the stage it finds.
"certs status" shows the stage and every server and node.`,
		Example: `  sudo monokube certs rotate-ca
  sudo monokube kubeconfig admin > admin.conf      # a kubeconfig under the new CA
  sudo monokube certs rotate-ca --finish
  sudo monokube certs rotate-ca --drop-old-service-account-keys   # an hour or more later
  sudo monokube certs rotate-ca --ca-cert corp-intermediate.crt --ca-key corp-intermediate.key`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (caCert == "") != (caKey == "") {
				return errors.New("--ca-cert and --ca-key go together")
			}
			if (finish || dropOldKeys) && caCert != "" {
				return errors.New("--ca-cert is for starting a rotation, not --finish")
			}
			files := pki.Files{Dir: g.layout.PKIDir()}
			r := &carotation.Rotation{Kubeconfig: files.SelfKubeconfig(), Files: files, Wait: wait, Log: stepLog(cmd.OutOrStdout())}
			if caCert != "" {
				var err error
				if r.CACert, err = os.ReadFile(caCert); err != nil {
					return fmt.Errorf("--ca-cert: %w", err)
				}
				if r.CAKey, err = os.ReadFile(caKey); err != nil {
					return fmt.Errorf("--ca-key: %w", err)
				}
			}
			began := time.Now()
			run := r.Start
			switch {
			case finish && dropOldKeys:
				run = func(ctx context.Context) error {
					if err := r.Finish(ctx); err != nil {
						return err
					}
					return r.DropOldServiceAccountKeys(ctx)
				}
			case finish:
				run = r.Finish
			case dropOldKeys:
				run = r.DropOldServiceAccountKeys
			}
			if err := run(cmd.Context()); err != nil {
				return err
			}
			r.Log("Done in %s", time.Since(began).Round(time.Second))
			return nil
		},
	}
	cmd.Flags().BoolVar(&finish, "finish", false, "drop the old CA everywhere (after rotate-ca)")
	cmd.Flags().BoolVar(&dropOldKeys, "drop-old-service-account-keys", false, "after --finish: stop verifying tokens the replaced service-account keys signed")
	cmd.Flags().StringVar(&caCert, "ca-cert", "", "the new CA's certificate (PEM); default: a new self-signed CA")
	cmd.Flags().StringVar(&caKey, "ca-key", "", "the new CA's private key (PEM), with --ca-cert")
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Minute, "how long each stage may take on the servers, and on the nodes")
	return cmd
}

// printCARotation prints where a CA rotation stands, on a server that has
// one under way or done.
func printCARotation(cmd *cobra.Command, g *globals) error {
	files := pki.Files{Dir: g.layout.PKIDir()}
	caKey, err := os.ReadFile(files.CAKey())
	if err != nil {
		return nil // a worker, or not root: the table alone
	}
	client, err := kubeclient.New(files.SelfKubeconfig(), kubeclient.WithTimeout(5*time.Second))
	if err != nil {
		return nil
	}
	state, found, err := carotation.Load(cmd.Context(), client, caKey)
	if err != nil {
		fmt.Fprintf(cmd.ErrOrStderr(), "CA rotation: cannot read its state: %v\n", err)
		return nil
	}
	if !found || state.Stage == "" {
		return nil // never rotated: the table alone, as before
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "CA rotation: stage %s (generation %d), started %s\n", state.Stage, state.Generation, state.Started.UTC().Format(time.RFC3339))
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "  SERVER\tADDRESS\tGENERATION\tSEEN")
	for _, name := range slices.Sorted(maps.Keys(state.Servers)) {
		r := state.Servers[name]
		fmt.Fprintf(w, "  %s\t%s\t%d\t%s ago\n", name, r.Address, r.Generation, time.Since(r.Time).Round(time.Second))
	}
	if nodes, err := client.CoreV1().Nodes().List(cmd.Context(), metav1.ListOptions{}); err == nil && len(nodes.Items) > 0 {
		fmt.Fprintln(w, "  NODE\t\tGENERATION\t")
		for _, n := range nodes.Items {
			fmt.Fprintf(w, "  %s\t\t%s\t\n", n.Name, orDash(n.Annotations[carotation.NodeAnnotation]))
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	return nil
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
