package helm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/klog/v2"
)

// releases installs, upgrades and uninstalls Helm releases with the
// server's admin credentials; release state is kept in Secrets, as the
// helm CLI keeps it, so `helm list` shows the same.
type releases struct {
	kubeconfig string
}

func (r releases) configuration(namespace string) (*action.Configuration, error) {
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &r.kubeconfig
	flags.Namespace = &namespace
	cfg := new(action.Configuration)
	debug := func(format string, args ...any) { klog.V(4).InfoS("helm", "message", fmt.Sprintf(format, args...)) }
	if err := cfg.Init(flags, namespace, "secret", debug); err != nil {
		return nil, fmt.Errorf("helm client for namespace %s: %w", namespace, err)
	}
	return cfg, nil
}

// apply installs the release, or upgrades it when it exists. It returns
// "installed" or "upgraded" and the release's revision.
func (r releases) apply(ctx context.Context, name, namespace string, createNamespace bool, timeout time.Duration, ch *chart.Chart, vals map[string]any) (string, int, error) {
	cfg, err := r.configuration(namespace)
	if err != nil {
		return "", 0, err
	}
	history, err := action.NewHistory(cfg).Run(name)
	if err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return "", 0, fmt.Errorf("release history: %w", err)
	}
	// No release, or only failed first attempts: install afresh.
	if len(history) == 0 || onlyFailedInstalls(history) {
		if len(history) > 0 {
			if _, err := action.NewUninstall(cfg).Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
				return "", 0, fmt.Errorf("remove the failed release: %w", err)
			}
		}
		install := action.NewInstall(cfg)
		install.ReleaseName, install.Namespace = name, namespace
		install.CreateNamespace = createNamespace
		install.Timeout = timeout
		rel, err := install.RunWithContext(ctx, ch, vals)
		if err != nil {
			return "", 0, fmt.Errorf("install: %w", err)
		}
		return "installed", rel.Version, nil
	}
	upgrade := action.NewUpgrade(cfg)
	upgrade.Namespace = namespace
	upgrade.Timeout = timeout
	upgrade.MaxHistory = 10
	rel, err := upgrade.RunWithContext(ctx, name, ch, vals)
	if err != nil {
		return "", 0, fmt.Errorf("upgrade: %w", err)
	}
	return "upgraded", rel.Version, nil
}

func onlyFailedInstalls(history []*release.Release) bool {
	for _, rel := range history {
		if rel.Info == nil || rel.Info.Status != release.StatusFailed {
			return false
		}
	}
	return true
}

// uninstall removes the release; one that does not exist is gone already.
func (r releases) uninstall(name, namespace string) error {
	cfg, err := r.configuration(namespace)
	if err != nil {
		return err
	}
	if _, err := action.NewUninstall(cfg).Run(name); err != nil && !errors.Is(err, driver.ErrReleaseNotFound) {
		return fmt.Errorf("uninstall: %w", err)
	}
	return nil
}
