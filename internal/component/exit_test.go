package component

import (
	"testing"
	"time"

	"k8s.io/klog/v2"
)

// An upstream exit during a requested stop ends only its own goroutine.
func TestUpstreamExitWhileStoppingEndsOnlyItsGoroutine(t *testing.T) {
	stopping.Store(true)
	defer stopping.Store(false)
	ended, continued := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(ended)
		klog.FlushAndExit(time.Millisecond, 1)
		close(continued)
	}()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the goroutine did not end")
	}
	select {
	case <-continued:
		t.Fatal("code after FlushAndExit ran")
	default:
	}
}
