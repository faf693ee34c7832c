package pki

import (
	"time"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/transport"
)

// CheckInterval is how often a running server looks for leaves due for
// renewal, and how often the components in its process re-read certificate
// files: an eighth of the renewal margin (the share of a lifetime left when
// renewal is due), between 1 s and upstream's 5 min. So a renewed
// certificate is in use long before the one it replaces expires, and a
// year-long certificate costs a file read every few minutes.
func CheckInterval(validity time.Duration, renewPercentLeft int) time.Duration {
	if validity == 0 {
		validity = DefaultLeafValidity
	}
	if renewPercentLeft == 0 {
		renewPercentLeft = DefaultRenewPercentLeft
	}
	margin := validity * time.Duration(renewPercentLeft) / 100
	return min(max(margin/8, time.Second), 5*time.Minute)
}

// ReloadEvery sets how often the upstream code in this process re-reads
// the certificate files it was given: client-go's file-based client
// certificates (every kubeconfig monokube writes for its own process) and
// the API server's and kubelet's serving certificates. Both are package
// settings upstream exposes for this; they must be set before the first
// client or server is built, since each reads it once.
func ReloadEvery(interval time.Duration) {
	transport.CertCallbackRefreshDuration = interval
	dynamiccertificates.FileRefreshDuration = interval
}
