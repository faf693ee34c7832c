// Package controlplane runs the upstream kube-apiserver, kube-scheduler and
// kube-controller-manager in this process, each as a lifecycle component.
package controlplane

import (
	"fmt"
	"maps"
	"slices"

	"github.com/spf13/pflag"
	cliflag "k8s.io/component-base/cli/flag"
)

// Args are upstream command-line flags by name (without "--").
type Args map[string]string

// merged returns defaults overridden by extra; extra is the user's
// extraArgs from the config, which always win.
func merged(defaults, extra Args) Args {
	out := maps.Clone(defaults)
	maps.Copy(out, extra)
	return out
}

// applyFlags sets args on the upstream component's own flag sets, exactly as
// its command line would, so every upstream default and validation applies.
// configPath names the config field in errors ("spec.api.extraArgs").
func applyFlags(sets cliflag.NamedFlagSets, args Args, configPath string) error {
	fs := pflag.NewFlagSet("upstream", pflag.ContinueOnError)
	for _, name := range sets.Order {
		fs.AddFlagSet(sets.FlagSets[name])
	}
	for _, name := range slices.Sorted(maps.Keys(args)) {
		if fs.Lookup(name) == nil {
			return fmt.Errorf("%s.%s: unknown flag --%s", configPath, name, name)
		}
		if err := fs.Set(name, args[name]); err != nil {
			return fmt.Errorf("%s.%s: invalid value %q: %w", configPath, name, args[name], err)
		}
	}
	return nil
}
