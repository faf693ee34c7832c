package component

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// Manager owns the lifecycle of an ordered list of components: startup
// order, readiness, failure handling and reverse-order shutdown all live here.
type Manager struct {
	// ReadyTimeout bounds how long one component may take to become ready.
	ReadyTimeout time.Duration

	components []Component
	started    []Component
	failures   chan error
	// stopping is closed when Stop begins, so the ends of work it causes
	// are not reported as failures.
	stopping chan struct{}
}

// NewManager returns a Manager for components, started in the given order.
func NewManager(components ...Component) *Manager {
	return &Manager{
		ReadyTimeout: 2 * time.Minute,
		components:   components,
		failures:     make(chan error, len(components)),
		stopping:     make(chan struct{}),
	}
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
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Start starts the components in order, waiting for each to be ready before
// the next starts. On error, the components already started are stopped.
func (m *Manager) Start(ctx context.Context) error {
	for _, c := range m.components {
		began := time.Now()
		if err := c.Start(ctx); err != nil {
			m.Stop()
			return fmt.Errorf("start %s: %w", c.Name(), err)
		}
		m.started = append(m.started, c)
		m.watch(c)
		if err := m.waitReady(ctx, c); err != nil {
			m.Stop()
			return fmt.Errorf("%s not ready: %w", c.Name(), err)
		}
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
	select {
	case err := <-readyErr:
		return err
	case err := <-m.failures:
		return err
	case <-ctx.Done():
		// Bound the wait even for a Ready that ignores its context.
		return ctx.Err()
	}
}

// watch reports the end of an Exiter's work as a failure.
func (m *Manager) watch(c Component) {
	exiter, ok := c.(Exiter)
	if !ok {
		return
	}
	go func() {
		select {
		case <-exiter.Exited():
			m.failures <- fmt.Errorf("%s stopped unexpectedly: %w", c.Name(), exiter.Err())
		case <-m.stopping:
		}
	}()
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
	for i := len(m.started) - 1; i >= 0; i-- {
		c := m.started[i]
		began := time.Now()
		klog.InfoS("Stopping component", "component", c.Name())
		if err := c.Stop(); err != nil {
			klog.ErrorS(err, "Component did not stop cleanly", "component", c.Name())
			continue
		}
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
		klog.ErrorS(err, "A component failed; shutting down")
		m.Stop()
		return err
	}
}
