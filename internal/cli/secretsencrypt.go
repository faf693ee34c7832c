package cli

import (
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/encryption"
	"github.com/monokube/monokube/internal/kubeclient"
	"github.com/monokube/monokube/internal/pki"
)

// stepLog prints a long command's steps, each with the time.
func stepLog(out io.Writer) func(format string, args ...any) {
	return func(format string, args ...any) {
		fmt.Fprintf(out, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
	}
}

func newSecretsEncryptCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secrets-encrypt",
		Short: "Show and rotate the keys that encrypt Secrets in the datastore",
		Long: `Secrets are encrypted in the datastore when spec.api.encryptionAtRest is on,
with keys made as spec.secretsEncryption says (secretbox, aescbc, aesgcm, or
kms for an external key manager's KMS v2 plugin). A rotation goes in two
commands, on any one server, while every server keeps serving:

  rotate     a new key reaches every server for reading, then becomes the
             key every server writes with (the old one still reads)
  reencrypt  every Secret is rewritten under the new key, then the old keys
             are dropped from every server

Each step waits until every running server's API server has loaded it.
Interrupted, run the same command again: it goes on from the stage it finds.`,
		Example: `  sudo monokube secrets-encrypt status
  sudo monokube secrets-encrypt rotate && sudo monokube secrets-encrypt reencrypt`,
	}
	var wait time.Duration
	rotation := func(cmd *cobra.Command) (*encryption.Rotation, error) {
		files := pki.Files{Dir: g.layout.PKIDir()}
		caKey, err := os.ReadFile(files.CAKey())
		if err != nil {
			return nil, fmt.Errorf("read the cluster CA key (run this on a server, as root): %w", err)
		}
		// Re-encryption rewrites every Secret: more than client-go's default
		// 5 requests/s (it is the rotation's own throttle that keeps
		// room for other clients: a few writers at a time).
		client, err := kubeclient.New(files.AdminKubeconfig(), kubeclient.WithTimeout(30*time.Second), kubeclient.WithRate(200, 200))
		if err != nil {
			return nil, err
		}
		return &encryption.Rotation{Client: client, CAKey: caKey, Wait: wait, Log: stepLog(cmd.OutOrStdout())}, nil
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Make a new key the one every server encrypts Secrets with",
		Example: `  sudo monokube secrets-encrypt rotate
  sudo monokube secrets-encrypt rotate --wait 10m   # slow servers`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rotation(cmd)
			if err != nil {
				return err
			}
			return r.Rotate(cmd.Context())
		},
	}
	reencrypt := &cobra.Command{
		Use:     "reencrypt",
		Short:   "Rewrite every Secret under the write key, then drop the other keys",
		Example: `  sudo monokube secrets-encrypt reencrypt`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rotation(cmd)
			if err != nil {
				return err
			}
			return r.Reencrypt(cmd.Context())
		},
	}
	for _, c := range []*cobra.Command{rotate, reencrypt} {
		c.Flags().DurationVar(&wait, "wait", 5*time.Minute, "how long each step waits for every server to load the keys")
	}
	status := &cobra.Command{
		Use:     "status",
		Short:   "Show the keys, the rotation's stage and what each server uses",
		Example: `  sudo monokube secrets-encrypt status`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rotation(cmd)
			if err != nil {
				return err
			}
			status, err := encryption.ReadStatus(cmd.Context(), r.Client, r.CAKey, encryption.Files{Dir: g.layout.PKIDir()})
			if err != nil {
				return err
			}
			return printEncryptionStatus(cmd.OutOrStdout(), status)
		},
	}
	cmd.AddCommand(status, rotate, reencrypt)
	return cmd
}

func printEncryptionStatus(out io.Writer, s encryption.Status) error {
	if !s.Found {
		fmt.Fprintln(out, "Encryption at rest: off (no keys in this cluster; switch it on with spec.api.encryptionAtRest: true)")
		return nil
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "Stage:\t%s (generation %d)\n", s.State.Stage, s.State.Generation)
	for i, key := range s.State.Keys {
		role := "read"
		if i == 0 {
			role = "write"
		}
		fmt.Fprintf(w, "Key %s:\t%s (%s)\n", key.Name, key.Provider, role)
	}
	fmt.Fprintf(w, "This server's file:\t%s, write key %s\n", s.LocalFile, s.LocalWriteKey)
	w.Flush()
	fmt.Fprintln(out)
	w = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "SERVER\tADDRESS\tRUNNING\tENCRYPTION\tGENERATION\tLOADED\tWRITE KEY\tPROVIDER\tREPORTED")
	names := make([]string, 0, len(s.State.Servers))
	for name := range s.State.Servers {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		r := s.State.Servers[name]
		onOff := map[bool]string{true: "on", false: "off"}[r.Enabled]
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", name, r.Address, yesNo(slices.Contains(s.Live, r.Address)), onOff,
			r.Generation, yesNo(r.Loaded), r.WriteKey, r.Settings.Provider, r.Time.Format(time.RFC3339))
	}
	return w.Flush()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
