package cgroups

import (
	"slices"
	"testing"
)

func TestProcessPathsPutsMemoryFirst(t *testing.T) {
	cases := map[string]struct {
		text string
		want []string
	}{
		"v1 hybrid": {"9:name=systemd:/\n4:memory:/sandbox/abc\n1:cpu:/\n0::/\n", []string{"/sandbox/abc", "/"}},
		"v2":        {"0::/user.slice/session-1.scope\n", []string{"/user.slice/session-1.scope"}},
		"garbage":   {"not a cgroup file", nil},
	}
	for name, c := range cases {
		if got := processPaths(c.text); !slices.Equal(got, c.want) {
			t.Errorf("%s: processPaths = %q, want %q", name, got, c.want)
		}
	}
}

func TestValidateRootAcceptsOnlyOneCleanPathBelowTheRoot(t *testing.T) {
	for _, ok := range []string{"/monokube", "/process_api/abc/mk-n1"} {
		if err := ValidateRoot(ok); err != nil {
			t.Errorf("ValidateRoot(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "/", "/.", "relative", "../../..", "/a/../..", "/a/..", "/a//b", "/a/", "/a/./b", "//"} {
		if err := ValidateRoot(bad); err == nil {
			t.Errorf("ValidateRoot(%q) = nil, want a refusal", bad)
		}
	}
}

func TestRemoveRootRefusesWhatValidateRootRefuses(t *testing.T) {
	for _, bad := range []string{"/", "/.", "../../..", "relative"} {
		if err := RemoveRoot(Detect(), bad); err == nil {
			t.Errorf("RemoveRoot(%q) = nil, want a refusal before any walk", bad)
		}
	}
}
