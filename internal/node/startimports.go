package node

import (
	"context"
	"sync"
	"time"
)

// startImports tells a pull (imageGate) when the images this start imports
// are in: each bundled image by reference, and the user's archives, whose
// references are known only once imported, all together. A bundled image
// imported on demand also learns here that a pull wants it. The map is
// filled before any import begins and never changes after.
type startImports struct {
	bundled      map[string]*bundledImport
	archives     chan struct{}
	archivesDone sync.Once
}

// bundledImport is one bundled archive's import: wanted closes when it may
// begin, done when it has ended (imported or failed).
type bundledImport struct {
	wanted, done chan struct{}
	want         sync.Once
}

func newStartImports() *startImports {
	return &startImports{bundled: map[string]*bundledImport{}, archives: make(chan struct{})}
}

// addBundled names the references one bundled archive gives. Unless
// onDemand, it is wanted from the start.
func (s *startImports) addBundled(refs []string, onDemand bool) *bundledImport {
	b := &bundledImport{wanted: make(chan struct{}), done: make(chan struct{})}
	if !onDemand {
		b.request()
	}
	for _, ref := range refs {
		s.bundled[ref] = b
	}
	return b
}

func (b *bundledImport) request() { b.want.Do(func() { close(b.wanted) }) }

// archivesImported says the user's archives have been imported (or failed).
func (s *startImports) archivesImported() { s.archivesDone.Do(func() { close(s.archives) }) }

func (s *startImports) isBundled(ref string) bool {
	_, ok := s.bundled[ref]
	return ok
}

func (s *startImports) archivesRunning() bool {
	select {
	case <-s.archives:
		return false
	default:
		return true
	}
}

// waitBundled asks for ref's import if it waits to be asked, and returns
// once it has ended, with how long it waited.
func (s *startImports) waitBundled(ctx context.Context, ref string) (time.Duration, error) {
	b, ok := s.bundled[ref]
	if !ok {
		return 0, nil
	}
	b.request()
	return waitClosed(ctx, b.done)
}

// waitArchives returns once the user's archives have been imported.
func (s *startImports) waitArchives(ctx context.Context) (time.Duration, error) {
	return waitClosed(ctx, s.archives)
}

func waitClosed(ctx context.Context, ch <-chan struct{}) (time.Duration, error) {
	select {
	case <-ch:
		return 0, nil
	default:
	}
	began := time.Now()
	select {
	case <-ch:
		return time.Since(began), nil
	case <-ctx.Done():
		return time.Since(began), ctx.Err()
	}
}
