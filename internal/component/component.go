// Package component defines the lifecycle every part of a monokube server or
// worker follows, and the Manager that orders it.
package component

import "context"

// Component is one thing the server or worker runs: the datastore, the API
// server, the kubelet. The Manager calls Init on all components (in parallel),
// then Start and Ready one after another in order, and Stop in reverse order.
type Component interface {
	// Name is a short identifier used in logs and errors ("apiserver").
	Name() string
	// Init prepares files and validates settings. It must not start long-lived work.
	Init(ctx context.Context) error
	// Start launches the component and returns once it is launched; long-lived
	// work runs in goroutines the component owns.
	Start(ctx context.Context) error
	// Ready blocks until the component serves, or ctx ends.
	Ready(ctx context.Context) error
	// Stop ends the component's work and waits for it, releasing listeners and files.
	Stop() error
}

// Exiter is implemented by components whose work can end on its own (an
// upstream Run function returning). The Manager treats such an end, while it
// has not asked the component to stop, as a failure of the whole process.
type Exiter interface {
	// Exited is closed when the component's work has ended.
	Exited() <-chan struct{}
	// Err returns why the work ended, once Exited is closed.
	Err() error
}
