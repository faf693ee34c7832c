// Package memory is the memory policy of monokube's long-running roles:
// how hard the garbage collector works while starting and once ready, and
// which of the program's own pages stay resident after start.
package memory

import (
	"os"
	"runtime/debug"
	"time"
)

// Long-running roles trade GC CPU for memory in two steps. The Go default
// (GOGC=100) lets the heap grow to twice what is live. While starting,
// CPU-bound on small machines, 50; once ready, 25: a server with a worker
// idles at 360 MiB RSS against 396 MiB at 50, while starting at 25 too cost
// about 0.6 s to Node Ready (TestNodeNumbers, 2-3 runs each). GOGC in the
// environment wins over both.
const (
	startingGCPercent = 50
	settledGCPercent  = 25
)

// Starting sets the policy for a server or worker that is starting.
func Starting() { setGCPercent(startingGCPercent) }

// startupTail is how long after ready start-up work still runs: the Node's
// registration, its pod network, the first pods and the add-ons (available
// about 20 s after start on a 2-core machine). Pages released before it
// are read back 4 KiB at a time by that work: releasing at ready cost
// 1.0 s to Node Ready and 1.2 s to the first pod (TestNodeNumbers, 3 runs).
const startupTail = 30 * time.Second

// Settled sets the policy for a server or worker that is ready: a lower GC
// target now, and the program pages only start-up used are given back
// once start-up work is over.
func Settled() {
	setGCPercent(settledGCPercent)
	time.AfterFunc(startupTail, releaseStartupPages)
}

func setGCPercent(percent int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
}
