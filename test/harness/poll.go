package harness

import (
	"context"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Poll checks condition every 100 ms until it holds, failing the test with
// what it waited for after timeout.
func Poll(t testing.TB, timeout time.Duration, what string, condition wait.ConditionWithContextFunc) {
	t.Helper()
	if !PollOK(timeout, condition) {
		t.Fatalf("waiting for %s: timed out after %s", what, timeout)
	}
}

// PollOK is Poll that reports instead of failing.
func PollOK(timeout time.Duration, condition wait.ConditionWithContextFunc) bool {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, condition) == nil
}

// PollSteady is Poll for a condition that must hold times checks in a row:
// for "traffic is blocked", where one lost packet proves nothing.
func PollSteady(t testing.TB, timeout time.Duration, times int, what string, condition func() bool) {
	t.Helper()
	held := 0
	Poll(t, timeout, what, func(context.Context) (bool, error) {
		if condition() {
			held++
		} else {
			held = 0
		}
		return held == times, nil
	})
}

// GrepLines returns the lines of text that contain substr, for messages.
func GrepLines(text, substr string) string {
	var lines []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			lines = append(lines, line)
		}
	}
	return strings.Join(lines, "\n")
}

// KillPlan is how many starts a kill -9 test interrupts
// (MONOKUBE_KILL_STARTS, default 5) and the random source of the moments,
// seeded from MONOKUBE_KILL_SEED to replay a run, or from the clock (logged).
func KillPlan(t testing.TB) (int, *rand.Rand) {
	kills := 5
	if n, err := strconv.Atoi(os.Getenv("MONOKUBE_KILL_STARTS")); err == nil {
		kills = n
	}
	seed := uint64(time.Now().UnixNano())
	if s, err := strconv.ParseUint(os.Getenv("MONOKUBE_KILL_SEED"), 10, 64); err == nil {
		seed = s
	}
	t.Logf("kill -9 plan: %d starts, MONOKUBE_KILL_SEED=%d", kills, seed)
	return kills, rand.New(rand.NewPCG(seed, 0))
}
