package fleet

import (
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
)

// kubernetesMinor reads the Kubernetes minor version from `monokube
// version` ("monokube v1 (kubernetes v1.37.1, ...)").
var kubernetesVersion = regexp.MustCompile(`kubernetes v1\.(\d+)\.`)

func kubernetesMinor(versionOutput string) (int, bool) {
	m := kubernetesVersion.FindStringSubmatch(versionOutput)
	if m == nil {
		return 0, false
	}
	minor, err := strconv.Atoi(m[1])
	return minor, err == nil
}

// checkSkew refuses a binary whose Kubernetes is more than one minor
// version newer than what a running host has, or older (Kubernetes
// upgrades one minor version at a time and does not downgrade).
func (a *Applier) checkSkew(ctx context.Context) error {
	out, err := exec.CommandContext(ctx, a.Binary, "version").Output()
	if err != nil {
		return fmt.Errorf("%s version: %w", a.Binary, err)
	}
	next, ok := kubernetesMinor(string(out))
	if !ok {
		return fmt.Errorf("%s version: no Kubernetes version in %q", a.Binary, out)
	}
	for _, h := range a.File.Spec.Hosts {
		if !a.status[h.Name].Running || a.status[h.Name].Binary == a.sum {
			continue
		}
		out, err := a.machines[h.Name].Run(ctx, remoteBinary+" version")
		if err != nil {
			continue // an unreadable binary is replaced anyway
		}
		current, ok := kubernetesMinor(out)
		if !ok {
			continue
		}
		switch {
		case next > current+1:
			return &StepError{h.Name, "check the version skew", fmt.Errorf("it runs Kubernetes 1.%d; this binary brings 1.%d: upgrade one minor version at a time", current, next)}
		case next < current:
			return &StepError{h.Name, "check the version skew", fmt.Errorf("it runs Kubernetes 1.%d; this binary brings 1.%d: Kubernetes does not downgrade", current, next)}
		}
	}
	return nil
}
