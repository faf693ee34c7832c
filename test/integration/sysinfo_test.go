package integration

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/monokube/monokube/test/harness"
)

// TestSysinfoOnThisHost: every check prints one PASS/WARN/FAIL line, this
// host passes what the tests need (exit 0), ip_vs is a warning (the
// kernel here has none), and -o json carries the same results.
func TestSysinfoOnThisHost(t *testing.T) {
	s := harness.NewServer(t, "")
	stdout, stderr, err := s.Run("sysinfo", "--config", s.ConfigPath)
	if err != nil {
		t.Fatalf("sysinfo failed on the test host: %v\n%s%s", err, stdout, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	names := map[string]string{}
	for _, line := range lines {
		fields := strings.Fields(line)
		if len(fields) < 2 || (fields[0] != "PASS" && fields[0] != "WARN" && fields[0] != "FAIL") {
			t.Fatalf("line without a status: %q", line)
		}
		names[fields[1]] = fields[0]
	}
	for _, needed := range []string{"kernel", "namespaces", "overlayfs", "nf_conntrack", "iptables"} {
		if names[needed] != "PASS" {
			t.Errorf("%s: %q, want PASS\n%s", needed, names[needed], stdout)
		}
	}
	if names["ip_vs"] != "WARN" {
		t.Errorf("ip_vs: %q, want WARN (no IPVS in this kernel)", names["ip_vs"])
	}

	stdout, _, err = s.Run("sysinfo", "--config", s.ConfigPath, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var results []struct{ Name, Status, Message string }
	if err := json.Unmarshal([]byte(stdout), &results); err != nil || len(results) != len(lines) {
		t.Fatalf("-o json: %v, %d results for %d lines\n%s", err, len(results), len(lines), stdout)
	}
	for _, r := range results {
		if r.Name == "" || r.Message == "" || names[strings.Fields(r.Name)[0]] == "" {
			t.Errorf("json result %+v does not match the text output", r)
		}
	}
}
