package config

import "fmt"

// ProfileCIS is the CIS Kubernetes Benchmark profile (spec.profile).
const ProfileCIS = "cis"

// Profiles are the allowed values of spec.profile; "" is none.
var Profiles = []string{"", ProfileCIS}

// CIS audit log limits: the benchmark asks for at least 30 days, 10 files
// and 100 MB (1.2.17-1.2.19).
const (
	cisAuditMaxAgeDays = 30
	cisAuditMaxBackups = 10
	cisAuditMaxSizeMB  = 100
)

// ApplyProfile raises the settings the profile requires and returns what
// it changed, one "field: from → to" each, for the start's log. The
// profile wins over the file: a CIS cluster with Secrets in the clear is
// not one. What the profile changes inside the components (admission
// plugins, ciphers, the kubelet's kernel defaults) follows from
// spec.profile where they are configured.
func (s *Spec) ApplyProfile() []string {
	if s.Profile != ProfileCIS {
		return nil
	}
	var changed []string
	raiseBool := func(field string, value *bool) {
		if !*value {
			changed = append(changed, field+": false → true")
			*value = true
		}
	}
	raiseInt := func(field string, value *int, least int) {
		if *value < least {
			changed = append(changed, fmt.Sprintf("%s: %d → %d", field, *value, least))
			*value = least
		}
	}
	setLevel := func(field string, value *string) {
		if *value != "restricted" {
			changed = append(changed, fmt.Sprintf("%s: %s → restricted", field, *value))
			*value = "restricted"
		}
	}
	raiseBool("spec.api.encryptionAtRest", &s.API.EncryptionAtRest)
	raiseBool("spec.api.audit.enabled", &s.API.Audit.Enabled)
	raiseInt("spec.api.audit.maxAgeDays", &s.API.Audit.MaxAgeDays, cisAuditMaxAgeDays)
	raiseInt("spec.api.audit.maxBackups", &s.API.Audit.MaxBackups, cisAuditMaxBackups)
	raiseInt("spec.api.audit.maxSizeMB", &s.API.Audit.MaxSizeMB, cisAuditMaxSizeMB)
	setLevel("spec.api.podSecurity.enforce", &s.API.PodSecurity.Enforce)
	setLevel("spec.api.podSecurity.audit", &s.API.PodSecurity.Audit)
	setLevel("spec.api.podSecurity.warn", &s.API.PodSecurity.Warn)
	return changed
}
