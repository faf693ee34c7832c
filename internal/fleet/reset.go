package fleet

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"time"

	"k8s.io/client-go/tools/clientcmd"
)

// Reset stops and uninstalls monokube on every host of the file, workers
// first, and resets each (`monokube reset`: containers, mounts, rules,
// cgroups, the data dir), then removes what apply put there. Hosts that
// cannot be reached are reported and the others still reset.
func Reset(ctx context.Context, f *File, dial func(context.Context, Host) (Machine, error), out io.Writer) error {
	var failed []error
	for _, h := range append(f.Workers(), reversed(f.Servers())...) {
		began := time.Now()
		err := resetHost(ctx, h, dial)
		if err != nil {
			failed = append(failed, err)
			fmt.Fprintf(out, "  %-20s FAILED: %v\n", h.Name, err)
			continue
		}
		fmt.Fprintf(out, "  %-20s reset (%s)\n", h.Name, time.Since(began).Round(100*time.Millisecond))
	}
	if len(failed) > 0 {
		return fmt.Errorf("%d of %d hosts were not reset", len(failed), len(f.Spec.Hosts))
	}
	fmt.Fprintf(out, "Cluster %s reset: %d hosts.\n", f.Metadata.Name, len(f.Spec.Hosts))
	return nil
}

func resetHost(ctx context.Context, h Host, dial func(context.Context, Host) (Machine, error)) error {
	m, err := dial(ctx, h)
	if err != nil {
		return &StepError{h.Name, "connect", err}
	}
	defer m.Close()
	if out, err := m.Run(ctx, "[ -x "+remoteBinary+" ] && echo installed || echo absent"); err != nil {
		return &StepError{h.Name, "look for monokube", err}
	} else if out == "absent\n" {
		return nil // nothing apply put here
	}
	if err := (service{commands: h.Service}).uninstall(ctx, m, roleOf(h)); err != nil {
		return &StepError{h.Name, "stop and uninstall the service", err}
	}
	if _, err := m.Run(ctx, "[ ! -d "+remoteDataDir+" ] || "+remoteBinary+" reset --data-dir "+remoteDataDir); err != nil {
		return &StepError{h.Name, "reset", err}
	}
	if _, err := m.Run(ctx, fmt.Sprintf("rm -f %s %s %s %s /etc/monokube/controller-token %s", remoteConfig, remoteToken, remoteArgs, remoteBinary, remoteBinary+".upload")); err != nil {
		return &StepError{h.Name, "remove the files apply put there", err}
	}
	return nil
}

func reversed(hosts []Host) []Host {
	out := make([]Host, len(hosts))
	for i, h := range hosts {
		out[len(hosts)-1-i] = h
	}
	return out
}

// AdminKubeconfig is the admin kubeconfig of the first running server,
// pointed at url.
func AdminKubeconfig(ctx context.Context, m Machine, url string) ([]byte, error) {
	var raw bytes.Buffer
	if err := m.Download(ctx, remoteAdmin, &raw); err != nil {
		return nil, err
	}
	cfg, err := clientcmd.Load(raw.Bytes())
	if err != nil {
		return nil, err
	}
	for _, c := range cfg.Clusters {
		c.Server = url
	}
	return clientcmd.Write(*cfg)
}
