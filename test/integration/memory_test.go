package integration

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

// TestServerGivesBackStartupPages waits for the release of the program's
// start-up pages (30 s after ready): the program's file-backed resident
// memory falls, its code and read-only data carry the random-read hint
// that keeps readahead from mapping them back, and the server still serves
// reads and writes afterwards.
func TestServerGivesBackStartupPages(t *testing.T) {
	server := harness.NewServer(t, "")
	server.StartReady()
	before := residentFileKiB(t, server.PID())
	harness.Poll(t, 2*time.Minute, "the release of start-up pages in the log", func(context.Context) (bool, error) {
		if strings.Contains(server.Log(), "Could not release start-up pages") {
			return false, fmt.Errorf("release failed:\n%s", harness.GrepLines(server.Log(), "start-up pages"))
		}
		return strings.Contains(server.Log(), "Released start-up pages of the program"), nil
	})
	// What the idle server runs faults back in within seconds: compare
	// after that, not at the instant of the release.
	time.Sleep(10 * time.Second)
	after := residentFileKiB(t, server.PID())
	t.Logf("file-backed resident: %d MiB at ready, %d MiB after the release", before>>10, after>>10)
	if after > before*7/10 {
		t.Errorf("file-backed resident memory %d MiB after the release, %d MiB at ready: less than 30%% given back", after>>10, before>>10)
	}
	smaps, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", server.PID()))
	if err != nil {
		t.Fatal(err)
	}
	if hinted := programMappingsWithRandomHint(string(smaps)); hinted < 2 {
		t.Errorf("%d of the program's read-only mappings carry the random-read hint, want code and read-only data", hinted)
	}
	server.MustKubectl("create", "configmap", "after-release", "--from-literal=k=v")
	if out := server.MustKubectl("get", "configmap", "after-release", "-o", "jsonpath={.data.k}"); out != "v" {
		t.Errorf("configmap after the release: %q", out)
	}
}

func residentFileKiB(t *testing.T, pid int) int {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "RssFile:" {
			kib, _ := strconv.Atoi(fields[1])
			return kib
		}
	}
	t.Fatal("no RssFile in /proc/<pid>/status")
	return 0
}

// programMappingsWithRandomHint counts the read-only mappings of the
// monokube program whose VmFlags include rr (MADV_RANDOM).
func programMappingsWithRandomHint(smaps string) int {
	count := 0
	inProgram := false
	for _, line := range strings.Split(smaps, "\n") {
		fields := strings.Fields(line)
		if len(fields) >= 6 && strings.Contains(fields[0], "-") {
			inProgram = strings.HasSuffix(fields[5], "/monokube") && !strings.Contains(fields[1], "w")
			continue
		}
		if inProgram && len(fields) > 0 && fields[0] == "VmFlags:" {
			for _, flag := range fields[1:] {
				if flag == "rr" {
					count++
				}
			}
		}
	}
	return count
}
