package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/cis"
)

func newCheckCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:     "check",
		Short:   "Check a running server against a security benchmark",
		Example: `  sudo monokube check cis`,
	}
	cmd.AddCommand(newCheckCISCommand(g))
	return cmd
}

func newCheckCISCommand(g *globals) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "cis",
		Short: "Check this server or worker against the CIS Kubernetes Benchmark; exit 1 on a FAIL",
		Long: `Check the server running on this data dir against the CIS Kubernetes Benchmark
(v1.9 numbering): the flags its API server, controller-manager and scheduler
started with, its node's kubelet and kube-proxy configs, Pod Security and
encryption settings, and the modes of its config, kubeconfigs and keys.
kube-bench reads process command lines, which monokube's in-process components
do not have; this reads what the server recorded at start
(<data-dir>/run/component-flags.json). Each control is PASS, FAIL or MANUAL
(judgement needed, or met another way: the reason says how).
A server started with --profile cis (spec.profile: cis) passes every
automated control. On a worker's data dir only section 4 applies (its
kubelet, kube-proxy and their files); a worker joined to a server with
the CIS profile passes it.`,
		Example: `  sudo monokube check cis
  sudo monokube check cis -o json | jq '.[] | select(.Status == "FAIL")'
  sudo monokube check cis --data-dir /var/lib/monokube   # on a worker`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, err := cis.Read(g.layout)
			if err != nil {
				return err
			}
			results := cis.Check(in)
			err = printReport(cmd.OutOrStdout(), output, results, func(r cis.Result) string {
				return fmt.Sprintf("%s\t%s\t%s: %s", r.ID, r.Status, r.Title, r.Reason)
			})
			if err != nil {
				return err
			}
			if failed := cis.Failed(results); failed > 0 {
				return fmt.Errorf("%d of %d controls failed (a server started with --profile cis, and its workers, pass them)", failed, len(results))
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "text", "text or json")
	return cmd
}
