package server

import (
	"context"
	"errors"
	"time"

	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
)

// certificates are the calls that keep this server's leaf certificates
// (pki.EnsureServer, EnsureEtcd, EnsureNode): each runs once where its part
// is built, and the renewal runs them all again while the server runs.
type certificates struct {
	ensure []func() error
}

// add runs ensure now and keeps it for the renewal.
func (c *certificates) add(ensure func() error) error {
	if err := ensure(); err != nil {
		return err
	}
	c.ensure = append(c.ensure, ensure)
	return nil
}

// certificateRenewal re-issues, while the server runs, every leaf whose
// remaining life falls below spec.pki.renewPercentLeft. Nothing restarts:
// every component reads its certificates from the files (see pki.ReloadEvery).
type certificateRenewal struct {
	certs *certificates
	every time.Duration
	component.Task
}

var _ component.Component = (*certificateRenewal)(nil)

func (r *certificateRenewal) Name() string { return "certificate-renewal" }

func (r *certificateRenewal) Init(context.Context) error { return nil }

func (r *certificateRenewal) Start(ctx context.Context) error {
	r.Go(ctx, func(ctx context.Context) error {
		ticker := time.NewTicker(r.every)
		defer ticker.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-ticker.C:
			}
			// A failure (a full disk) is retried at the next tick; the
			// current certificates stay in place until then.
			if err := r.renew(); err != nil {
				klog.ErrorS(err, "Certificate renewal failed; retrying", "in", r.every)
			}
		}
	})
	return nil
}

func (r *certificateRenewal) renew() error {
	var errs []error
	for _, ensure := range r.certs.ensure {
		errs = append(errs, ensure())
	}
	return errors.Join(errs...)
}

func (r *certificateRenewal) Ready(context.Context) error { return nil }

func (r *certificateRenewal) Stop() error { return r.Task.Stop(5 * time.Second) }
