package component

import (
	"context"
	"os"
	"runtime"
	"sync/atomic"

	"k8s.io/klog/v2"
)

// stopping is set once the process has been asked to stop.
var stopping atomic.Bool

// Some upstream controllers end the whole process (klog.FlushAndExit) when
// a call fails, and calls do fail while everything shuts down: the
// namespace controller exits 1 if it cannot list resources. During a
// requested stop such an exit would turn a clean shutdown into a failure,
// so it ends only the goroutine that asked; otherwise it exits as upstream
// intends.
func init() {
	klog.OsExit = func(code int) {
		// Code 2 is klog failing to write its own files, with its lock
		// held: logging here would deadlock, so it always exits.
		if stopping.Load() && code != 2 {
			klog.InfoS("An embedded component asked to exit while stopping; ending only its goroutine", "code", code)
			runtime.Goexit()
		}
		os.Exit(code)
	}
}

// markStoppingWhenDone sets stopping as soon as ctx (the process's signal
// context) ends, before the components see it.
func markStoppingWhenDone(ctx context.Context) {
	context.AfterFunc(ctx, func() { stopping.Store(true) })
}
