package component

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func waitExited(t *testing.T, task *Task) {
	t.Helper()
	select {
	case <-task.Exited():
	case <-time.After(testTimeout):
		t.Fatal("task did not exit")
	}
}

func TestTaskStopCancelsRunAndWaitsForIt(t *testing.T) {
	var task Task
	returned := make(chan struct{})
	task.Go(context.Background(), func(ctx context.Context) error {
		<-ctx.Done()
		close(returned)
		return ctx.Err()
	})
	if err := task.Stop(testTimeout); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-returned:
	default:
		t.Fatal("Stop returned before run did")
	}
	waitExited(t, &task)
}

func TestTaskStopIgnoresTheErrorOfARequestedStop(t *testing.T) {
	var task Task
	closed := errors.New("http: Server closed")
	task.Go(context.Background(), func(ctx context.Context) error {
		<-ctx.Done()
		return closed
	})
	if err := task.Stop(testTimeout); err != nil {
		t.Errorf("Stop = %v, want nil: the error came after we asked for the stop", err)
	}
	if !errors.Is(task.Err(), closed) {
		t.Errorf("Err = %v, want the run function's error kept", task.Err())
	}
}

func TestTaskStopGivesUpAfterTimeout(t *testing.T) {
	var task Task
	release := make(chan struct{})
	defer close(release)
	task.Go(context.Background(), func(context.Context) error {
		<-release // ignores its context
		return nil
	})
	err := task.Stop(20 * time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "did not stop within 20ms") {
		t.Errorf("Stop = %v, want a timeout error", err)
	}
}

func TestTaskEndOnItsOwn(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name string
		run  func(context.Context) error
		want string
	}{
		{"error is kept", func(context.Context) error { return boom }, "boom"},
		{"nil while it should still run is an error", func(context.Context) error { return nil }, "exited without error while it should still run"},
		{"panic becomes an error", func(context.Context) error { panic("oops") }, "panic: oops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var task Task
			task.Go(context.Background(), tt.run)
			waitExited(t, &task)
			if err := task.Err(); err == nil || err.Error() != tt.want {
				t.Errorf("Err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestTaskEndsWithParentContext(t *testing.T) {
	var task Task
	ctx, cancel := context.WithCancel(context.Background())
	task.Go(ctx, func(ctx context.Context) error {
		<-ctx.Done()
		return nil
	})
	cancel()
	waitExited(t, &task)
	if err := task.Err(); err != nil {
		t.Errorf("Err = %v, want nil for a nil return after the context ended", err)
	}
}

func TestTaskNotStarted(t *testing.T) {
	var task Task
	if task.Exited() != nil {
		t.Error("Exited of a task never started is not nil")
	}
	if err := task.Stop(time.Millisecond); err != nil {
		t.Errorf("Stop of a task never started = %v, want nil", err)
	}
}
