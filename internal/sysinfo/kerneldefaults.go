package sysinfo

import (
	"fmt"
	"strings"
)

// kernelDefaults are the kernel parameters a kubelet with
// protectKernelDefaults (the CIS profile, benchmark 4.2.6) requires as
// they are: it refuses to change them, and fails to start when one
// differs. These are the kubelet's own values.
var kernelDefaults = []struct {
	path  string
	value int
}{
	{"vm/overcommit_memory", 1}, {"vm/panic_on_oom", 0}, {"kernel/panic", 10},
	{"kernel/panic_on_oops", 1}, {"kernel/keys/root_maxkeys", 1000000}, {"kernel/keys/root_maxbytes", 25000000},
}

// kernelDefaultsFile is where the failure suggests the settings live.
const kernelDefaultsFile = "/etc/sysctl.d/90-kubelet.conf"

// protectedKernelDefaults fails, naming every parameter that differs and
// the lines to fix them, when the node's kubelet will protect the kernel's
// defaults; monokube never changes them itself (they are the machine's).
func protectedKernelDefaults(h Host, opts Options) []Result {
	if !opts.ProtectKernelDefaults {
		return nil
	}
	var wrong, fix []string
	for _, param := range kernelDefaults {
		key := strings.ReplaceAll(param.path, "/", ".")
		value, ok := sysctl(h, param.path)
		if !ok || value != param.value {
			now := "unreadable"
			if ok {
				now = fmt.Sprint(value)
			}
			wrong = append(wrong, fmt.Sprintf("%s is %s, needs %d", key, now, param.value))
			fix = append(fix, fmt.Sprintf("%s=%d", key, param.value))
		}
	}
	if len(wrong) > 0 {
		return []Result{fail("kernel defaults", "spec.profile cis protects the kernel's defaults (kubelet protectKernelDefaults) and %s: put %s in %s and run `sysctl --system`",
			strings.Join(wrong, ", "), strings.Join(fix, " "), kernelDefaultsFile)}
	}
	return []Result{pass("kernel defaults", "as the kubelet's protectKernelDefaults requires")}
}

// CheckKernelDefaults is the check alone, for a worker that learns the
// cluster's profile after its preflight.
func CheckKernelDefaults() error {
	return Failed(protectedKernelDefaults(realHost{}, Options{ProtectKernelDefaults: true}))
}
