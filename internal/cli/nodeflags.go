package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/monokube/monokube/internal/config"
)

// nodeFlags shape this machine as a node; `server --enable-worker` and
// `worker` share them, with one validation (config.WorkerSpec.Problems).
type nodeFlags struct {
	cgroupRoot string
	nodeName   string
	labels     []string
	taints     []string
	// registries is this machine's registries.yaml (k3s's --private-registry).
	registries string
}

// flagOf names the flag behind each spec.worker field in messages.
var flagOf = map[string]string{
	"cgroupRoot": "--cgroup-root",
	"nodeName":   "--node-name",
	"labels":     "--node-label",
	"taints":     "--node-taint",
}

func (f *nodeFlags) add(cmd *cobra.Command, overrides string) {
	cmd.Flags().StringVar(&f.cgroupRoot, "cgroup-root", "", "put every cgroup of this node below this path"+overrides)
	cmd.Flags().StringVar(&f.nodeName, "node-name", "", "name of this node (default: the hostname)"+overrides)
	// As k3s names them.
	cmd.Flags().StringArrayVar(&f.labels, "node-label", nil, "label the Node registers with, key=value (repeatable)")
	cmd.Flags().StringArrayVar(&f.taints, "node-taint", nil, "taint the Node registers with, key=value:Effect (repeatable)")
	cmd.Flags().StringVar(&f.registries, "private-registry", config.DefaultRegistriesFile,
		"k3s-style registries.yaml (mirrors, rewrites, credentials, TLS) added over the cluster's registry settings; re-read when it changes")
}

// apply checks the flags that were given and puts them over spec (a
// server's spec.worker from its config file; empty for a worker). Errors
// name the flag.
func (f *nodeFlags) apply(cmd *cobra.Command, spec *config.WorkerSpec) error {
	given := config.WorkerSpec{Labels: f.labels, Taints: f.taints}
	root, err := cgroupRootFlag(cmd, f.cgroupRoot)
	if err != nil {
		return err
	}
	given.CgroupRoot = root
	if cmd.Flags().Changed("node-name") {
		given.NodeName = f.nodeName
	}
	if problems := given.Problems(); len(problems) > 0 {
		var lines []string
		for _, problem := range problems {
			lines = append(lines, fmt.Sprintf("%s: %s", flagOf[problem.Field], problem.Message))
		}
		return fmt.Errorf("%s", strings.Join(lines, "\n  "))
	}
	if given.CgroupRoot != "" {
		spec.CgroupRoot = given.CgroupRoot
	}
	if given.NodeName != "" {
		spec.NodeName = given.NodeName
	}
	spec.Labels = append(spec.Labels, given.Labels...)
	spec.Taints = append(spec.Taints, given.Taints...)
	return nil
}

// cgroupRootFlag is --cgroup-root when given ("" when not). An empty value
// is refused: leaving the flag out is how to say "no nesting", and an empty
// root must never be mistaken for one the user checked.
func cgroupRootFlag(cmd *cobra.Command, value string) (string, error) {
	if cmd.Flags().Changed("cgroup-root") && value == "" {
		return "", fmt.Errorf("--cgroup-root: give a path like /monokube, or leave the flag out")
	}
	return value, nil
}
