package pki

import (
	"strings"
	"testing"
)

// FuzzValidateUser: user names and groups end up in certificate subjects
// and kubeconfig keys. Whatever ValidateUser accepts must be printable
// ASCII without the characters that break those, and never "system:"
// unless allowed; it must never panic.
func FuzzValidateUser(f *testing.F) {
	for _, seed := range []string{"jane", "jane@example.com", "team:dev", "system:node:n1", "a,b", "", "é", strings.Repeat("x", 300)} {
		f.Add(seed, "dev", false)
	}
	f.Fuzz(func(t *testing.T, name, group string, allowSystem bool) {
		if ValidateUser(UserRequest{Name: name, Groups: []string{group}, AllowSystem: allowSystem}) != nil {
			return
		}
		for _, value := range []string{name, group} {
			if value == "" || len(value) > 253 || strings.ContainsAny(value, ",/\\\"'`=+<>;# ") {
				t.Fatalf("accepted %q", value)
			}
			if strings.HasPrefix(value, "system:") && !allowSystem {
				t.Fatalf("accepted reserved %q", value)
			}
			for _, r := range value {
				if r < 0x21 || r > 0x7e {
					t.Fatalf("accepted non-printable %q", value)
				}
			}
		}
	})
}
