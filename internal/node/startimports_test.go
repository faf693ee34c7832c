package node

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestStartImportsHoldABundledPullUntilItsImportEnds(t *testing.T) {
	for _, onDemand := range []bool{false, true} {
		imports := newStartImports()
		coredns := imports.addBundled([]string{"monokube.io/coredns:1.15.0"}, onDemand)
		if imports.isBundled("docker.io/library/busybox:latest") {
			t.Fatal("an image not bundled is known as bundled")
		}
		wantedAtOnce := isClosed(coredns.wanted)
		if wantedAtOnce == onDemand {
			t.Fatalf("onDemand %v: wanted before any pull = %v", onDemand, wantedAtOnce)
		}

		short, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		if _, err := imports.waitBundled(short, "monokube.io/coredns:1.15.0"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("a pull returned before the import ended: %v", err)
		}
		cancel()
		if !isClosed(coredns.wanted) {
			t.Fatal("a pull did not ask for the import")
		}

		result := make(chan time.Duration)
		go func() {
			waited, _ := imports.waitBundled(context.Background(), "monokube.io/coredns:1.15.0")
			result <- waited
		}()
		time.Sleep(50 * time.Millisecond)
		close(coredns.done)
		if waited := <-result; waited < 40*time.Millisecond {
			t.Fatalf("the pull waited %s, less than the import took", waited)
		}
		if waited, err := imports.waitBundled(context.Background(), "monokube.io/coredns:1.15.0"); waited != 0 || err != nil {
			t.Fatalf("a pull after the import waited %s, %v", waited, err)
		}
	}
}

func TestStartImportsArchivesEndOnce(t *testing.T) {
	imports := newStartImports()
	if !imports.archivesRunning() {
		t.Fatal("archives imported before the import began")
	}
	result := make(chan error)
	go func() {
		_, err := imports.waitArchives(context.Background())
		result <- err
	}()
	imports.archivesImported()
	imports.archivesImported() // the import and the task's end both say so
	if err := <-result; err != nil || imports.archivesRunning() {
		t.Fatalf("waitArchives = %v, running = %v after the import", err, imports.archivesRunning())
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
