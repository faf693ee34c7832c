package component

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"k8s.io/klog/v2"
)

// Task runs one long-lived function (typically an upstream component's Run)
// in a goroutine it owns, and remembers how it ended. Components embed it to
// satisfy Exiter and to stop their work with a deadline.
type Task struct {
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// Go starts run in a goroutine with a context derived from ctx that Stop cancels.
// A panic in run is turned into an error so it reaches the Manager instead of
// killing the process without a word.
func (t *Task) Go(ctx context.Context, run func(ctx context.Context) error) {
	ctx, t.cancel = context.WithCancel(ctx)
	t.done = make(chan struct{})
	go func() {
		defer close(t.done)
		defer func() {
			if r := recover(); r != nil {
				// The stack is what tells where; the error alone does not.
				klog.ErrorS(nil, "Panic in a component's task", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				t.err = fmt.Errorf("panic: %v", r)
			}
		}()
		t.err = run(ctx)
		if t.err == nil && ctx.Err() == nil {
			t.err = errors.New("exited without error while it should still run")
		}
	}()
}

// Exited is closed when the task's function has returned.
func (t *Task) Exited() <-chan struct{} {
	if t.done == nil {
		return nil
	}
	return t.done
}

// Err is the task's result once Exited is closed.
func (t *Task) Err() error { return t.err }

// Stop cancels the task and waits up to timeout for its function to return.
func (t *Task) Stop(timeout time.Duration) error {
	if t.cancel == nil {
		return nil
	}
	t.cancel()
	select {
	case <-t.done:
		// Upstream Run functions return assorted errors ("server closed") when
		// their context ends; once we asked for the stop they are not failures.
		return nil
	case <-time.After(timeout):
		return fmt.Errorf("did not stop within %s", timeout)
	}
}
