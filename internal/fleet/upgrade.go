package fleet

import (
	"context"
	"fmt"
	"time"
)

// upgrade replaces what differs on running hosts (a newer binary, a
// changed server config): servers one at a time, each ready before the
// next; then workers in batches of MaxUnavailable, each cordoned and
// drained first and uncordoned once Ready. It stops at the first failure;
// a rerun finds the hosts already done and goes on.
func (a *Applier) upgrade(ctx context.Context) error {
	for _, h := range a.File.Servers() {
		if !a.outdated(h) {
			continue
		}
		if err := a.replace(ctx, h); err != nil {
			return err
		}
	}
	var pending []Host
	for _, h := range a.File.Workers() {
		if a.outdated(h) {
			pending = append(pending, h)
		}
	}
	for len(pending) > 0 {
		batch := pending[:min(a.MaxUnavailable, len(pending))]
		pending = pending[len(batch):]
		if err := a.eachHost(ctx, batch, a.replace); err != nil {
			return err
		}
	}
	return nil
}

// outdated reports a running host whose binary or config is not the file's.
func (a *Applier) outdated(h Host) bool {
	st := a.status[h.Name]
	return st.Running && (st.Binary != a.sum || (h.IsServer() && st.Config != a.config))
}

// replace upgrades one running host in place.
func (a *Applier) replace(ctx context.Context, h Host) error {
	began := time.Now()
	from := a.status[h.Name].Version
	if h.IsNode() {
		if err := a.drain(ctx, h); err != nil {
			return err
		}
	}
	if _, err := a.putFiles(ctx, h); err != nil {
		return err
	}
	svc, m, role := a.service(h), a.machines[h.Name], roleOf(h)
	// The containers keep running: a node's restart leaves its shims.
	if err := svc.stop(ctx, m, role); err != nil {
		return &StepError{h.Name, "stop the service", err}
	}
	restarted := time.Now()
	if err := svc.start(ctx, m, role); err != nil {
		return &StepError{h.Name, "start the service", err}
	}
	if h.IsServer() {
		if err := a.waitAPI(ctx, h); err != nil {
			return err
		}
	}
	if h.IsNode() {
		if err := a.waitNodeReady(ctx, h, restarted); err != nil {
			return err
		}
		if err := a.uncordon(ctx, h); err != nil {
			return err
		}
	}
	st, err := probe(ctx, m)
	if err != nil {
		return &StepError{h.Name, "read its state", err}
	}
	a.step(h, "upgraded %s -> %s (%s)", from, st.Version, time.Since(began).Round(time.Millisecond))
	a.did(h, fmt.Sprintf("upgraded %s -> %s", from, st.Version), time.Since(began))
	return nil
}
