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
