package fleet

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/internal/config"
)

// controllerLeases are the leases of the servers' controllers that a drain
// depends on: the endpoint controllers take an evicted pod out of its
// Services (kube-controller-manager), the scheduler places its
// replacement, and monokube's own controllers keep LoadBalancer addresses.
// Each exists only where several servers may run.
var controllerLeases = []string{"kube-controller-manager", "kube-scheduler", "monokube-controllers"}

// leaderWait bounds how long apply waits for the controllers to lead again:
// a lease whose holder stopped without releasing it expires in 15 s.
const leaderWait = 2 * time.Minute

// waitControllersLead waits until every controller lease is renewed, that
// is, a live server leads it. Right after a server restarts, the lease it
// held may still name it for up to 15 s, and no controller acts meanwhile:
// a drain then leaves evicted pods among their Services' endpoints, and
// traffic to them fails. The renewal is judged by the lease changing, not
// by its time against this machine's clock, which may differ.
func (a *Applier) waitControllersLead(ctx context.Context, h Host) error {
	if a.File.Spec.Config.Storage.Type == config.StorageSQLite {
		// One server, no leader election: its controllers run whenever it does.
		return nil
	}
	began := time.Now()
	first := map[string]string{}
	for {
		waiting := ""
		for _, name := range controllerLeases {
			lease, err := a.client.CoordinationV1().Leases(metav1.NamespaceSystem).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				waiting = fmt.Sprintf("lease %s: %v", name, err)
				continue
			}
			seen := ""
			if lease.Spec.RenewTime != nil && lease.Spec.HolderIdentity != nil && *lease.Spec.HolderIdentity != "" {
				seen = *lease.Spec.HolderIdentity + "@" + lease.Spec.RenewTime.UTC().Format(time.RFC3339Nano)
			}
			previous, ok := first[name]
			if !ok {
				first[name] = seen
			}
			if !ok || seen == "" || seen == previous {
				waiting = "lease " + name + " not renewed yet"
			}
		}
		if waiting == "" {
			if waited := time.Since(began); waited > 5*time.Second {
				a.step(h, "controllers lead again (%s)", waited.Round(time.Millisecond))
			}
			return nil
		}
		if time.Since(began) > leaderWait {
			return &StepError{h.Name, "wait for the controllers to lead", fmt.Errorf("%s after %s: is a server's controller-manager or scheduler failing?", waiting, leaderWait)}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}
