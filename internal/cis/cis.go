// Package cis checks a running monokube server against the CIS Kubernetes
// Benchmark (v1.9 numbering). kube-bench reads each component's process
// command line and files; monokube's components run inside one process
// with no command lines of their own, so this package reads what the
// server recorded instead: the flags each control-plane component started
// with (controlplane.FlagRecord), the kubelet's and kube-proxy's config
// files, the admission and encryption configs, and file modes.
package cis

import (
	"fmt"
	"slices"
	"strings"
)

// Status is a control's outcome.
type Status string

const (
	Pass Status = "PASS"
	Fail Status = "FAIL"
	// Manual is a control that needs a person's judgement, or that an
	// in-process distribution meets in another way (the reason says how).
	Manual Status = "MANUAL"
)

// Result is one control's outcome and why.
type Result struct {
	ID, Title string
	Status    Status
	Reason    string
}

// Failed counts the FAIL results.
func Failed(results []Result) int {
	n := 0
	for _, r := range results {
		if r.Status == Fail {
			n++
		}
	}
	return n
}

// Flags are one component's flags, as recorded at its start.
type Flags map[string]string

func (f Flags) has(flag string) bool { _, ok := f[flag]; return ok }

// list is a comma-separated flag's values.
func (f Flags) list(flag string) []string {
	if f[flag] == "" {
		return nil
	}
	return strings.Split(f[flag], ",")
}

// check makes a PASS or FAIL result.
func check(id, title string, ok bool, reason string, args ...any) Result {
	status := Fail
	if ok {
		status = Pass
	}
	return Result{ID: id, Title: title, Status: status, Reason: fmt.Sprintf(reason, args...)}
}

func manual(id, title, reason string) Result {
	return Result{ID: id, Title: title, Status: Manual, Reason: reason}
}

// flagIs checks that flag has want (a missing flag has upstream's default,
// dflt).
func flagIs(f Flags, id, title, flag, want, dflt string) Result {
	value, set := f[flag]
	if !set {
		value = dflt
	}
	return check(id, title, value == want, "--%s=%s", flag, value)
}

// flagSet checks that every flag is set.
func flagSet(f Flags, id, title string, flags ...string) Result {
	var missing, set []string
	for _, flag := range flags {
		if f.has(flag) {
			set = append(set, "--"+flag)
		} else {
			missing = append(missing, "--"+flag)
		}
	}
	if len(missing) > 0 {
		return check(id, title, false, "%s not set", strings.Join(missing, ", "))
	}
	return check(id, title, true, "%s set", strings.Join(set, ", "))
}

// strongCiphers are the suites CIS 1.2.29 and 4.2.12 accept.
var strongCiphers = []string{
	"TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
	"TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
	"TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
	"TLS_RSA_WITH_AES_256_GCM_SHA384", "TLS_RSA_WITH_AES_128_GCM_SHA256",
}

func ciphers(id, title string, suites []string) Result {
	if len(suites) == 0 {
		return check(id, title, false, "no cipher list: Go's defaults include CBC suites")
	}
	for _, suite := range suites {
		if !slices.Contains(strongCiphers, suite) {
			return check(id, title, false, "%s is not one of the strong suites", suite)
		}
	}
	return check(id, title, true, "%d strong suites only", len(suites))
}
