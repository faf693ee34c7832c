package harness

import (
	"os/exec"
	"testing"
)

func TestStartTimeTellsAProcessFromALaterOneWithItsPID(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	start := startTime(cmd.Process.Pid)
	if start == "" {
		t.Fatal("no start time for a running process")
	}
	if again := startTime(cmd.Process.Pid); again != start {
		t.Fatalf("start time changed: %s, then %s", start, again)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if after := startTime(cmd.Process.Pid); after == start {
		t.Fatalf("a reaped process still has its start time %s", after)
	}
}
