// Package cgroups detects the host's cgroup layout and creates and removes
// a node's cgroup root in every hierarchy ("nested" mode).
package cgroups

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/klog/v2"
)

// Mode is the host's cgroup layout.
type Mode int

const (
	V1 Mode = iota // v1 hierarchies (possibly with a v2 "unified" mount: hybrid)
	V2             // one unified hierarchy
)

func (m Mode) String() string {
	if m == V2 {
		return "v2"
	}
	return "v1"
}

const cgroupMount = "/sys/fs/cgroup"

// Detect tells v2 (unified) from v1 by the root's cgroup.controllers file.
func Detect() Mode {
	if _, err := os.Stat(filepath.Join(cgroupMount, "cgroup.controllers")); err == nil {
		return V2
	}
	return V1
}

// hierarchies lists the mounted cgroup hierarchies (every directory under
// /sys/fs/cgroup that holds a cgroup.procs file), or the root itself on v2.
func hierarchies(mode Mode) ([]string, error) {
	if mode == V2 {
		return []string{cgroupMount}, nil
	}
	entries, err := os.ReadDir(cgroupMount)
	if err != nil {
		return nil, fmt.Errorf("list cgroup hierarchies: %w", err)
	}
	var dirs []string
	for _, entry := range entries {
		dir := filepath.Join(cgroupMount, entry.Name())
		info, err := os.Lstat(dir)
		if err != nil || !info.IsDir() { // skip the cpu,cpuacct style symlinks
			continue
		}
		if _, err := os.Stat(filepath.Join(dir, "cgroup.procs")); err == nil {
			dirs = append(dirs, dir)
		}
	}
	return dirs, nil
}

// EnsureRoot creates root (like "/process_api/abc/mk-n1") in every
// hierarchy, as the kubelet requires on v1; new cpuset levels get their
// parent's cpus and mems, or no task could join them.
func EnsureRoot(mode Mode, root string) error {
	if root == "" || root == "/" {
		return nil
	}
	dirs, err := hierarchies(mode)
	if err != nil {
		return err
	}
	parts := strings.Split(strings.Trim(root, "/"), "/")
	for _, hierarchy := range dirs {
		current := hierarchy
		for _, part := range parts {
			parent := current
			current = filepath.Join(current, part)
			if _, err := os.Stat(current); err == nil {
				continue
			}
			if err := os.Mkdir(current, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return fmt.Errorf("create cgroup %s: %w", current, err)
			}
			if filepath.Base(hierarchy) == "cpuset" {
				for _, file := range []string{"cpuset.cpus", "cpuset.mems"} {
					value, err := os.ReadFile(filepath.Join(parent, file))
					if err != nil {
						return fmt.Errorf("read %s: %w", file, err)
					}
					if err := os.WriteFile(filepath.Join(current, file), value, 0o644); err != nil {
						return fmt.Errorf("set %s on %s: %w", file, current, err)
					}
				}
			}
		}
	}
	klog.InfoS("Cgroup root ready", "root", root, "cgroups", mode.String(), "hierarchies", len(dirs))
	return nil
}

// ValidateRoot accepts a cgroup root only when it names one cgroup below
// the hierarchy roots: absolute, clean ("/a/b", not "/a/../b" or "/a/."),
// and not "/" itself. Anything else could make the removal of a node's
// cgroups walk the whole hierarchy.
func ValidateRoot(root string) error {
	switch {
	case !strings.HasPrefix(root, "/"):
		return fmt.Errorf("%q must be an absolute cgroup path like /monokube", root)
	case root == "/":
		return fmt.Errorf("%q is the hierarchy root; give a cgroup below it like /monokube, or none", root)
	case filepath.Clean(root) != root || slices.Contains(strings.Split(root, "/"), ".."):
		return fmt.Errorf("%q must be a clean cgroup path (no \".\", \"..\", \"//\" or trailing \"/\"), like %q", root, filepath.Clean(root))
	}
	return nil
}

// RemoveRoot removes root and everything below it, deepest first, in
// every hierarchy. Cgroups that still hold processes are reported. A root
// ValidateRoot refuses is refused here too, and the walk never leaves
// <hierarchy>/<root>.
func RemoveRoot(mode Mode, root string) error {
	if err := ValidateRoot(root); err != nil {
		return err
	}
	dirs, err := hierarchies(mode)
	if err != nil {
		return err
	}
	var errs []error
	for _, hierarchy := range dirs {
		base := filepath.Join(hierarchy, root)
		var tree []string
		_ = filepath.WalkDir(base, func(path string, entry os.DirEntry, err error) error {
			if err == nil && entry.IsDir() && (path == base || strings.HasPrefix(path, base+"/")) {
				tree = append(tree, path)
			}
			return nil
		})
		slices.Reverse(tree)
		for _, dir := range tree {
			if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dir, err))
			}
		}
	}
	return errors.Join(errs...)
}

// SystemdManaged reports whether systemd is the init system (the check
// sd_booted makes): then the kubelet and runc must let systemd manage
// cgroups, or the two managers fight over the same tree.
func SystemdManaged() bool {
	info, err := os.Stat("/run/systemd/system")
	return err == nil && info.IsDir()
}

// ProcessIn reports whether process pid is in the cgroup root or below it,
// judged by its memory hierarchy (v1) or its unified one (v2 and hybrid).
func ProcessIn(pid int, root string) bool {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	if err != nil {
		return false
	}
	for _, path := range processPaths(string(raw)) {
		if path == root || strings.HasPrefix(path, root+"/") {
			return true
		}
	}
	return false
}

// Own is this process's cgroup: its memory cgroup on v1 (the one a
// sandbox or supervisor gives it), its unified one on v2.
func Own() (string, error) {
	raw, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", fmt.Errorf("read own cgroup: %w", err)
	}
	paths := processPaths(string(raw))
	if len(paths) == 0 {
		return "", fmt.Errorf("no memory or unified cgroup in /proc/self/cgroup")
	}
	return paths[0], nil
}

// processPaths returns, from a /proc/<pid>/cgroup text, the memory
// hierarchy's path first (when there is one) and then the unified one.
func processPaths(procCgroup string) []string {
	var memory, unified []string
	for _, line := range strings.Split(procCgroup, "\n") {
		parts := strings.SplitN(line, ":", 3)
		switch {
		case len(parts) != 3:
		case parts[1] == "memory":
			memory = append(memory, parts[2])
		case parts[0] == "0":
			unified = append(unified, parts[2])
		}
	}
	return append(memory, unified...)
}
