package sysinfo

import "k8s.io/klog/v2"

// Preflight runs the checks before a server or worker starts: warnings
// are logged, and a failure stops the start with the check's message
// instead of a component's error deep in the log.
func Preflight(opts Options) error {
	results := Run(opts)
	for _, r := range results {
		if r.Status == Warn {
			klog.InfoS("Host check warning", "check", r.Name, "message", r.Message)
		}
	}
	return Failed(results)
}
