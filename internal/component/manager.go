package component

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// Manager owns the lifecycle of an ordered list of components: startup
// order, readiness, failure handling and reverse-order shutdown all live here.
type Manager struct {
	// ReadyTimeout bounds how long one component may take to become ready:
	// a component that hangs is reported and the process ends, so a service
	// manager starts it again. It is generous because a small or busy
	// machine is slow, not hung: an arm64 board on an SD card, or an
	// emulated machine, takes minutes to get the API server ready, and a
	// bound shorter than that restarts it forever (test/vm found this).
	ReadyTimeout time.Duration
	// WaitingLog is how often a component still not ready is logged.
	WaitingLog time.Duration
	// OnChange, when set, gets every component's state after each change
	// (StatesFile publishes them for `monokube status`). It is called with
	// the Manager's lock held, in order; it must not call the Manager.
	OnChange func([]State)

	components []Component
	started    []Component
	failures   chan error
	// stopping is closed when Stop begins, so the ends of work it causes
	// are not reported as failures.
	stopping chan struct{}

	mu     sync.Mutex
	states []State
}

// NewManager returns a Manager for components, started in the given order.
func NewManager(components ...Component) *Manager {
	m := &Manager{
		ReadyTimeout: 15 * time.Minute,
		WaitingLog:   30 * time.Second,
		components:   components,
		failures:     make(chan error, len(components)),
		stopping:     make(chan struct{}),
	}
	now := time.Now()
	for _, c := range components {
		m.states = append(m.states, State{Name: c.Name(), State: Waiting, Since: now})
	}
	return m
}

// set records component i's state and tells OnChange.
func (m *Manager) set(i int, state string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	previous := m.states[i]
	m.states[i] = State{Name: previous.Name, State: state, Since: time.Now()}
	switch {
	case err != nil:
		m.states[i].Error = err.Error()
	case state == Stopping || state == Stopped:
		m.states[i].Error = previous.Error // why it failed stays visible
	}
	if m.OnChange != nil {
		m.OnChange(slices.Clone(m.states))
	}
}

// States returns every component's current state, in start order.
func (m *Manager) States() []State {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.states)
}

// Init runs every component's Init in parallel and returns all errors joined.
func (m *Manager) Init(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(m.components))
	for i, c := range m.components {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Init(ctx); err != nil {
				errs[i] = fmt.Errorf("init %s: %w", c.Name(), err)
				m.set(i, Failed, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Start starts the components in order, waiting for each to be ready before
// the next starts. On error, the components already started are stopped.
func (m *Manager) Start(ctx context.Context) error {
	for i, c := range m.components {
		began := time.Now()
		m.set(i, Starting, nil)
		if err := c.Start(ctx); err != nil {
			m.set(i, Failed, err)
			m.Stop()
			return fmt.Errorf("start %s: %w", c.Name(), err)
		}
		m.started = append(m.started, c)
		m.watch(i, c)
		if err := m.waitReady(ctx, c); err != nil {
			m.set(i, Failed, err)
			m.Stop()
			return fmt.Errorf("%s not ready: %w", c.Name(), err)
		}
		m.set(i, Ready, nil)
		klog.InfoS("Component ready", "component", c.Name(), "took", time.Since(began).Round(time.Millisecond))
	}
	return nil
}

// waitReady waits for c.Ready, but gives up early when c's work ends, so a
// component that fails during startup is reported with its own error.
func (m *Manager) waitReady(ctx context.Context, c Component) error {
	ctx, cancel := context.WithTimeout(ctx, m.ReadyTimeout)
	defer cancel()
	readyErr := make(chan error, 1)
	go func() { readyErr <- c.Ready(ctx) }()
	began := time.Now()
	var tick <-chan time.Time
	if m.WaitingLog > 0 {
		ticker := time.NewTicker(m.WaitingLog)
		defer ticker.Stop()
		tick = ticker.C
	}
	for {
		select {
		case err := <-readyErr:
			return err
		case err := <-m.failures:
			return err
		case <-tick:
			klog.InfoS("Waiting for component to be ready", "component", c.Name(),
				"waited", time.Since(began).Round(time.Second), "limit", m.ReadyTimeout)
		case <-ctx.Done():
			// Bound the wait even for a Ready that ignores its context.
			return ctx.Err()
		}
	}
}

// watch reports the end of an Exiter's work (component i) as a failure.
func (m *Manager) watch(i int, c Component) {
	exiter, ok := c.(Exiter)
	if !ok {
		return
	}
	go func() {
		select {
		case <-exiter.Exited():
			m.set(i, Failed, exiter.Err())
			m.failures <- fmt.Errorf("%s stopped unexpectedly: %w", c.Name(), exiter.Err())
		case <-m.stopping:
		}
	}()
}

// ProcessEnder is a component whose upstream code ends the whole process
// when asked to stop; the Manager leaves it running when it stops the
// others.
type ProcessEnder interface {
	EndsProcessWhenStopped() bool
}

// Failed delivers the first unexpected end of a started component's work.
func (m *Manager) Failed() <-chan error { return m.failures }

// Stop stops the started components in reverse order and logs each step.
// It keeps going when one fails, so every component gets its chance to clean up.
func (m *Manager) Stop() {
	stopping.Store(true)
	select {
	case <-m.stopping:
	default:
		close(m.stopping)
	}
	// m.started is a prefix of m.components, so index i is both's.
	for i := len(m.started) - 1; i >= 0; i-- {
		c := m.started[i]
		if ender, ok := c.(ProcessEnder); ok && ender.EndsProcessWhenStopped() {
			// It ends with the process instead: an upstream goroutine
			// without a way to stop it that does not exit.
			klog.InfoS("Leaving component running until the process ends (stopping it would end the process)", "component", c.Name())
			m.set(i, Stopped, nil)
			continue
		}
		began := time.Now()
		klog.InfoS("Stopping component", "component", c.Name())
		m.set(i, Stopping, nil)
		if err := c.Stop(); err != nil {
			m.set(i, Failed, err)
			klog.ErrorS(err, "Component did not stop cleanly", "component", c.Name())
			continue
		}
		m.set(i, Stopped, nil)
		klog.InfoS("Component stopped", "component", c.Name(), "took", time.Since(began).Round(time.Millisecond))
	}
	m.started = nil
}

// Run is a role's whole life: Init, Start, then onReady, then wait for ctx
// to end (a signal) or a component to fail, and Stop in reverse order. A
// stop requested during startup is not a failure.
func (m *Manager) Run(ctx context.Context, onReady func()) error {
	markStoppingWhenDone(ctx)
	if err := m.Init(ctx); err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		if ctx.Err() != nil {
			klog.InfoS("Stopped during startup", "reason", err.Error())
			return nil
		}
		return err
	}
	onReady()
	select {
	case <-ctx.Done():
		klog.InfoS("Shutting down")
		m.Stop()
		return nil
	case err := <-m.Failed():
		if errors.Is(err, ErrRestart) {
			klog.InfoS("Restarting", "reason", err.Error())
		} else {
			klog.ErrorS(err, "A component failed; shutting down")
		}
		m.Stop()
		return err
	}
}
