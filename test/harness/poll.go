package harness

import (
	"context"
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
