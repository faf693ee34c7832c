package component

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// events records the lifecycle calls of fake components, in order.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, fmt.Sprintf(format, args...))
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

// fake is a Component whose every step can be made to fail.
type fake struct {
	name   string
	events *events

	initErr  error
	startErr error
	readyErr error
	stopErr  error
	// readyWaits makes Ready block until its context ends, as a component
	// that never becomes ready does.
	readyWaits bool
}

func (f *fake) Name() string { return f.name }

func (f *fake) Init(context.Context) error {
	f.events.add("init %s", f.name)
	return f.initErr
}

func (f *fake) Start(context.Context) error {
	f.events.add("start %s", f.name)
	return f.startErr
}

func (f *fake) Ready(ctx context.Context) error {
	if f.readyWaits {
		<-ctx.Done()
		f.events.add("ready %s: %v", f.name, ctx.Err())
		return ctx.Err()
	}
	f.events.add("ready %s", f.name)
	return f.readyErr
}

func (f *fake) Stop() error {
	f.events.add("stop %s", f.name)
	return f.stopErr
}

// taskComponent runs run in an embedded Task, as the control-plane
// components run their upstream Run functions.
type taskComponent struct {
	Task
	name   string
	events *events
	run    func(ctx context.Context) error
	// ready, when set, is what Ready waits for besides its context.
	ready chan struct{}
}

func (c *taskComponent) Name() string               { return c.name }
func (c *taskComponent) Init(context.Context) error { return nil }

func (c *taskComponent) Start(ctx context.Context) error {
	c.events.add("start %s", c.name)
	c.Go(ctx, c.run)
	return nil
}

func (c *taskComponent) Ready(ctx context.Context) error {
	if c.ready == nil {
		return nil
	}
	select {
	case <-c.ready:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *taskComponent) Stop() error {
	c.events.add("stop %s", c.name)
	return c.Task.Stop(5 * time.Second)
}

// runUntilCancelled is the run function of a component that works until stopped.
func runUntilCancelled(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// testTimeout bounds every wait in these tests, so a bug fails instead of hanging.
const testTimeout = 5 * time.Second

func TestManagerStartsInOrderAndStopsInReverse(t *testing.T) {
	ev := &events{}
	m := NewManager(
		&fake{name: "datastore", events: ev},
		&fake{name: "apiserver", events: ev},
		&fake{name: "scheduler", events: ev},
	)
	ctx := context.Background()
	if err := m.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	m.Stop()

	want := []string{
		"start datastore", "ready datastore",
		"start apiserver", "ready apiserver",
		"start scheduler", "ready scheduler",
		"stop scheduler", "stop apiserver", "stop datastore",
	}
	if got := ev.get(); !slices.Equal(got, want) {
		t.Errorf("events:\n got  %q\n want %q", got, want)
	}

	// A second Stop has nothing left to stop.
	m.Stop()
	if got := ev.get(); len(got) != len(want) {
		t.Errorf("second Stop stopped again: %q", got[len(want):])
	}
}

func TestManagerStopKeepsGoingWhenAComponentFailsToStop(t *testing.T) {
	ev := &events{}
	m := NewManager(
		&fake{name: "a", events: ev},
		&fake{name: "b", events: ev, stopErr: errors.New("stuck")},
		&fake{name: "c", events: ev},
	)
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	m.Stop()
	got := ev.get()
	if want := []string{"stop c", "stop b", "stop a"}; !slices.Equal(got[len(got)-3:], want) {
		t.Errorf("stop events = %q, want %q", got[len(got)-3:], want)
	}
}

func TestManagerStartFailure(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name       string
		components func(ev *events) []Component
		wantErr    string
		want       []string
	}{
		{
			name: "Start error stops the started components and names the failing one",
			components: func(ev *events) []Component {
				return []Component{
					&fake{name: "a", events: ev},
					&fake{name: "b", events: ev},
					&fake{name: "c", events: ev, startErr: boom},
					&fake{name: "d", events: ev},
				}
			},
			wantErr: "start c: boom",
			want: []string{
				"start a", "ready a", "start b", "ready b", "start c",
				"stop b", "stop a", // c did not start, d was never reached
			},
		},
		{
			name: "Ready error stops every started component including the unready one",
			components: func(ev *events) []Component {
				return []Component{
					&fake{name: "a", events: ev},
					&fake{name: "b", events: ev, readyErr: boom},
					&fake{name: "c", events: ev},
				}
			},
			wantErr: "b not ready: boom",
			want:    []string{"start a", "ready a", "start b", "ready b", "stop b", "stop a"},
		},
		{
			name: "first component fails to start and nothing is stopped",
			components: func(ev *events) []Component {
				return []Component{&fake{name: "a", events: ev, startErr: boom}}
			},
			wantErr: "start a: boom",
			want:    []string{"start a"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &events{}
			m := NewManager(tt.components(ev)...)
			err := m.Start(context.Background())
			if err == nil {
				t.Fatal("Start succeeded")
			}
			if !errors.Is(err, boom) {
				t.Errorf("Start error %v does not wrap the component's error", err)
			}
			if err.Error() != tt.wantErr {
				t.Errorf("Start error = %q, want %q", err, tt.wantErr)
			}
			if got := ev.get(); !slices.Equal(got, tt.want) {
				t.Errorf("events:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}

func TestManagerReportsTaskFailureAfterStartOnFailed(t *testing.T) {
	ev := &events{}
	boom := errors.New("listener closed")
	fail := make(chan struct{})
	m := NewManager(
		&taskComponent{name: "datastore", events: ev, run: runUntilCancelled},
		&taskComponent{name: "apiserver", events: ev, run: func(ctx context.Context) error {
			select {
			case <-fail:
				return boom
			case <-ctx.Done():
				return ctx.Err()
			}
		}},
	)
	if err := m.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	defer m.Stop()

	select {
	case err := <-m.Failed():
		t.Fatalf("Failed() reported %v before anything failed", err)
	default:
	}

	close(fail)
	select {
	case err := <-m.Failed():
		if !errors.Is(err, boom) {
			t.Errorf("Failed() = %v, want it to wrap %v", err, boom)
		}
		if !strings.HasPrefix(err.Error(), "apiserver ") {
			t.Errorf("Failed() = %q, want it to name apiserver", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Failed() reported nothing after the task ended")
	}
}

func TestManagerReportsTaskThatReturnsNilWhileItShouldRun(t *testing.T) {
	m := NewManager(&taskComponent{name: "scheduler", events: &events{}, run: func(context.Context) error { return nil }})
	// The task may end before or after Ready; either way it must surface.
	if err := m.Start(context.Background()); err != nil {
		if !strings.Contains(err.Error(), "scheduler") || !strings.Contains(err.Error(), "exited without error") {
			t.Errorf("Start error = %q, want it to name scheduler and the early exit", err)
		}
		return
	}
	defer m.Stop()
	select {
	case err := <-m.Failed():
		if !strings.Contains(err.Error(), "scheduler") || !strings.Contains(err.Error(), "exited without error") {
			t.Errorf("Failed() = %q, want it to name scheduler and the early exit", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("Failed() reported nothing after the task returned")
	}
}

func TestManagerStartReportsTaskFailureWhileWaitingForReady(t *testing.T) {
	ev := &events{}
	boom := errors.New("bad flag")
	m := NewManager(
		&fake{name: "datastore", events: ev},
		// Never ready: only the failure of its task can end the wait.
		&taskComponent{name: "apiserver", events: ev, ready: make(chan struct{}), run: func(context.Context) error { return boom }},
	)
	m.ReadyTimeout = testTimeout

	began := time.Now()
	err := m.Start(context.Background())
	if err == nil {
		t.Fatal("Start succeeded although the apiserver task failed")
	}
	if took := time.Since(began); took >= testTimeout {
		t.Errorf("Start took %s: it waited for the ready timeout instead of the failure", took)
	}
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "apiserver") {
		t.Errorf("Start error = %q, want it to name apiserver and wrap %v", err, boom)
	}
	if got, want := ev.get(), []string{"start datastore", "ready datastore", "start apiserver", "stop apiserver", "stop datastore"}; !slices.Equal(got, want) {
		t.Errorf("events:\n got  %q\n want %q", got, want)
	}
}

func TestManagerInit(t *testing.T) {
	errA, errC := errors.New("bad datastore path"), errors.New("bad port")
	tests := []struct {
		name      string
		errs      []error // Init error of components a, b, c
		wantErrs  []error
		wantNames []string
	}{
		{name: "all succeed", errs: []error{nil, nil, nil}},
		{name: "one fails", errs: []error{nil, nil, errC}, wantErrs: []error{errC}, wantNames: []string{"init c: bad port"}},
		{name: "every failure is returned", errs: []error{errA, nil, errC}, wantErrs: []error{errA, errC}, wantNames: []string{"init a: bad datastore path", "init c: bad port"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := &events{}
			var components []Component
			for i, name := range []string{"a", "b", "c"} {
				components = append(components, &fake{name: name, events: ev, initErr: tt.errs[i]})
			}
			err := NewManager(components...).Init(context.Background())

			got := ev.get()
			slices.Sort(got)
			if want := []string{"init a", "init b", "init c"}; !slices.Equal(got, want) {
				t.Errorf("Init called %q, want every component's Init: %q", got, want)
			}
			if len(tt.wantErrs) == 0 {
				if err != nil {
					t.Errorf("Init = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatal("Init = nil, want an error")
			}
			for _, want := range tt.wantErrs {
				if !errors.Is(err, want) {
					t.Errorf("Init error %q does not wrap %q", err, want)
				}
			}
			for _, want := range tt.wantNames {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Init error %q does not contain %q", err, want)
				}
			}
		})
	}
}

// barrierComponent's Init returns only once every component's Init has
// begun, which can only happen when they run in parallel.
type barrierComponent struct {
	fake
	arrived *sync.WaitGroup
	all     chan struct{}
}

func (b *barrierComponent) Init(ctx context.Context) error {
	b.arrived.Done()
	select {
	case <-b.all:
		return nil
	case <-time.After(testTimeout):
		return errors.New("the other Init calls never began")
	}
}

func TestManagerInitRunsInParallel(t *testing.T) {
	var arrived sync.WaitGroup
	all := make(chan struct{})
	var components []Component
	for _, name := range []string{"a", "b", "c"} {
		arrived.Add(1)
		components = append(components, &barrierComponent{fake: fake{name: name, events: &events{}}, arrived: &arrived, all: all})
	}
	go func() { arrived.Wait(); close(all) }()
	if err := NewManager(components...).Init(context.Background()); err != nil {
		t.Errorf("Init: %v", err)
	}
}

func TestManagerReadyTimeoutBoundsABlockingReady(t *testing.T) {
	ev := &events{}
	m := NewManager(
		&fake{name: "datastore", events: ev},
		&fake{name: "apiserver", events: ev, readyWaits: true},
		&fake{name: "scheduler", events: ev},
	)
	m.ReadyTimeout = 50 * time.Millisecond

	began := time.Now()
	err := m.Start(context.Background())
	took := time.Since(began)
	if err == nil {
		t.Fatal("Start succeeded although apiserver never became ready")
	}
	if !errors.Is(err, context.DeadlineExceeded) || !strings.HasPrefix(err.Error(), "apiserver not ready") {
		t.Errorf("Start error = %q, want apiserver not ready with a deadline error", err)
	}
	if took < m.ReadyTimeout || took > testTimeout {
		t.Errorf("Start took %s, want about the ReadyTimeout of %s", took, m.ReadyTimeout)
	}
	// The blocked Ready may record its end before or after the Manager
	// gives up on it, so that one event is left out of the comparison.
	want := []string{
		"start datastore", "ready datastore",
		"start apiserver",
		"stop apiserver", "stop datastore",
	}
	got := slices.DeleteFunc(ev.get(), func(e string) bool { return strings.HasPrefix(e, "ready apiserver") })
	if !slices.Equal(got, want) {
		t.Errorf("events:\n got  %q\n want %q", got, want)
	}
}

func TestManagerStartStopsOnCallerCancel(t *testing.T) {
	ev := &events{}
	m := NewManager(
		&fake{name: "datastore", events: ev},
		&fake{name: "apiserver", events: ev, readyWaits: true},
	)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(10*time.Millisecond, cancel)
	err := m.Start(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Start error = %v, want context.Canceled", err)
	}
	got := slices.DeleteFunc(ev.get(), func(e string) bool { return strings.HasPrefix(e, "ready apiserver") })
	if want := []string{"stop apiserver", "stop datastore"}; !slices.Equal(got[len(got)-2:], want) {
		t.Errorf("events = %q, want them to end with %q", got, want)
	}
}

// processEnder is a fake whose upstream code would end the process if
// it were stopped.
type processEnder struct{ fake }

func (p *processEnder) EndsProcessWhenStopped() bool { return true }

func TestManagerLeavesAProcessEnderRunning(t *testing.T) {
	ev := &events{}
	m := NewManager(
		&fake{name: "apiserver", events: ev},
		&processEnder{fake{name: "scheduler", events: ev}},
		&fake{name: "addons", events: ev},
	)
	if err := m.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	m.Stop()
	got := ev.get()
	want := []string{"stop addons", "stop apiserver"}
	if stops := got[len(got)-2:]; !slices.Equal(stops, want) {
		t.Errorf("stops %q, want %q (the scheduler left to end with the process, the rest stopped after it)", stops, want)
	}
}

// A task that asks for a restart ends the Manager's Run with ErrRestart,
// after every component stopped.
func TestManagerRunEndsWithARestartRequest(t *testing.T) {
	ev := &events{}
	restarter := &restarting{}
	m := NewManager(&fake{name: "apiserver", events: ev}, restarter)
	err := m.Run(context.Background(), func() {})
	if !errors.Is(err, ErrRestart) {
		t.Fatalf("Run = %v, want ErrRestart", err)
	}
	if got := ev.get(); got[len(got)-1] != "stop apiserver" {
		t.Errorf("events %q: the others were not stopped", got)
	}
}

type restarting struct{ Task }

func (r *restarting) Name() string                { return "restarting" }
func (r *restarting) Init(context.Context) error  { return nil }
func (r *restarting) Ready(context.Context) error { return nil }
func (r *restarting) Stop() error                 { return r.Task.Stop(time.Second) }
func (r *restarting) Start(ctx context.Context) error {
	r.Go(ctx, func(context.Context) error { return ErrRestart })
	return nil
}
