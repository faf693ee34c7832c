package config

import (
	"slices"
	"testing"
)

func TestCISProfileRaisesWhatTheBenchmarkAsks(t *testing.T) {
	spec := Default().Spec
	spec.Profile = ProfileCIS
	spec.API.Audit.MaxBackups = 3
	changed := spec.ApplyProfile()
	api := spec.API
	if !api.EncryptionAtRest || !api.Audit.Enabled || api.Audit.MaxBackups != 10 || api.Audit.MaxAgeDays < 30 || api.Audit.MaxSizeMB < 100 {
		t.Errorf("encryption %v, audit %+v: want encryption, audit on with ≥30 days, ≥10 files, ≥100 MB", api.EncryptionAtRest, api.Audit)
	}
	if api.PodSecurity != (PodSecuritySpec{Enforce: "restricted", Audit: "restricted", Warn: "restricted"}) {
		t.Errorf("pod security %+v, want restricted everywhere", api.PodSecurity)
	}
	for _, want := range []string{"spec.api.encryptionAtRest: false → true", "spec.api.audit.maxBackups: 3 → 10", "spec.api.podSecurity.enforce: baseline → restricted"} {
		if !slices.Contains(changed, want) {
			t.Errorf("changes %q lack %q", changed, want)
		}
	}
	if again := spec.ApplyProfile(); len(again) != 0 {
		t.Errorf("a second application changed %q", again)
	}
	plain := Default().Spec
	if changed := plain.ApplyProfile(); changed != nil || plain.API.EncryptionAtRest {
		t.Errorf("no profile changed %q", changed)
	}
}
