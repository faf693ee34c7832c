// Package sysinfo checks that a host can run a monokube server or worker,
// and says how to fix what it cannot: `monokube sysinfo`, and the same
// checks before a server or worker starts.
package sysinfo

import (
	"errors"
	"fmt"
	"strings"
)

// Status of one check.
type Status string

const (
	Pass Status = "PASS"
	Warn Status = "WARN"
	Fail Status = "FAIL"
)

// Result is one check's outcome; Message says what was found and, unless
// it passed, the fix.
type Result struct {
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Message string `json:"message"`
}

// Options say what the checks are for.
type Options struct {
	// Node is true when this machine runs a node (a worker, or a server
	// with --enable-worker): containers, the pod network, kube-proxy.
	Node bool
	// Server is true for a control plane.
	Server bool
	// DataDir is where state goes; its filesystem's free space is checked.
	DataDir string
	// CgroupRoot is the node's nested cgroup root, if any.
	CgroupRoot string
	// Ports are TCP ports this role listens on; empty skips the check
	// (at start, the components report a taken port themselves).
	Ports []int
	// NetworkPolicy and IPVS say whether ipset and ip_vs are needed.
	NetworkPolicy, IPVS bool
	// ProtectKernelDefaults says the node's kubelet refuses kernel
	// parameters other than its own (spec.profile: cis).
	ProtectKernelDefaults bool
}

// Run performs every check that applies to opts, in a fixed order.
func Run(opts Options) []Result {
	host := realHost{}
	checks := []func(Host, Options) []Result{
		kernel, cgroupControllers, namespaces, nestedCgroup, diskSpace, ports,
	}
	if opts.Node {
		checks = append(checks, overlayfs, bridgeNetfilter, vxlan, ipForward, conntrack, ipvs, netTools, inotify, swap, resolvConf, protectedKernelDefaults)
	}
	var results []Result
	for _, check := range checks {
		results = append(results, check(host, opts)...)
	}
	return results
}

// Failed joins the FAIL results into one error for a refusing start.
func Failed(results []Result) error {
	var errs []error
	for _, r := range results {
		if r.Status == Fail {
			errs = append(errs, fmt.Errorf("%s: %s", r.Name, r.Message))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("this host cannot run monokube (details: `monokube sysinfo`):\n  %w", joinLines(errs))
}

func joinLines(errs []error) error {
	var lines []string
	for _, err := range errs {
		lines = append(lines, err.Error())
	}
	return errors.New(strings.Join(lines, "\n  "))
}

func pass(name, format string, args ...any) Result {
	return Result{Name: name, Status: Pass, Message: fmt.Sprintf(format, args...)}
}
func warn(name, format string, args ...any) Result {
	return Result{Name: name, Status: Warn, Message: fmt.Sprintf(format, args...)}
}
func fail(name, format string, args ...any) Result {
	return Result{Name: name, Status: Fail, Message: fmt.Sprintf(format, args...)}
}
