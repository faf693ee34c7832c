// Package memory is the memory policy of monokube's long-running roles:
// how hard the garbage collector works while starting, busy and idle, and
// which of the program's own pages stay resident after start.
package memory

import (
	"os"
	"runtime/debug"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// The Go default (GOGC=100) lets the heap grow to twice what is live. The
// GC's CPU is proportional to what is allocated divided by GOGC, whatever
// the live heap, so a low GOGC costs CPU exactly when the process is busy;
// its memory saving matters when it is idle. Hence three settings:
//   - starting: 100. At 50, Node Ready took 0.4 s longer (4.50 s against
//     4.09 s, TestNodeNumbers, 5 runs each) for memory freed again at once.
//   - busy (a burst of pods, a rollout): 100. With 25, the GC was a third
//     of the process's CPU while 100 pods started (CPU profile), and the
//     hundred took 21.5 s against 19.2 s.
//   - idle: 25, and the heap's free pages handed back on entering it. A
//     server with a worker idled at 360 MiB RSS at 25 against 396 MiB at 50.
//
// GOGC in the environment wins over all of them.
const (
	startingGCPercent = 100
	busyGCPercent     = 100
	idleGCPercent     = 25
)

// busyCores and idleCores are the process's CPU use (in cores, over one
// sample) above which it is busy, and under which for idleSamples in a row
// it is idle again.
const (
	busyCores   = 0.5
	idleCores   = 0.2
	idleSamples = 5
	sampleEvery = time.Second
)

// Starting sets the policy for a server or worker that is starting.
func Starting() { setGCPercent(startingGCPercent) }

// startupTail is how long after ready start-up work still runs: the Node's
// registration, its pod network, the first pods and the add-ons (available
// about 20 s after start on a 2-core machine). Pages released before it
// are read back 4 KiB at a time by that work: releasing at ready cost
// 1.0 s to Node Ready and 1.2 s to the first pod (TestNodeNumbers, 3 runs).
const startupTail = 30 * time.Second

// Settled sets the policy for a server or worker that is ready: the GC
// follows the process's load from now on, and the program pages only
// start-up used are given back once start-up work is over.
func Settled() {
	time.AfterFunc(startupTail, releaseStartupPages)
	if os.Getenv("GOGC") != "" {
		return
	}
	go followLoad()
}

// followLoad samples the process's CPU time and switches the GC between
// the busy and idle settings. It starts busy: the first moments after
// ready are start-up's tail.
func followLoad() {
	busy, quiet := true, 0
	debug.SetGCPercent(busyGCPercent)
	last := cpuSeconds()
	for range time.Tick(sampleEvery) {
		now := cpuSeconds()
		var next bool
		next, quiet = nextLoadState(busy, quiet, (now-last)/sampleEvery.Seconds())
		last = now
		if next == busy {
			continue
		}
		busy = next
		if busy {
			debug.SetGCPercent(busyGCPercent)
			continue
		}
		debug.SetGCPercent(idleGCPercent)
		// A GC at the idle setting, and the freed pages back to the
		// system now rather than over minutes of scavenging.
		began := time.Now()
		debug.FreeOSMemory()
		klog.V(2).InfoS("Process idle: garbage collected and memory returned", "took", time.Since(began).Round(time.Millisecond))
	}
}

// nextLoadState is followLoad's decision for one sample: busy at once
// above busyCores, idle after idleSamples samples in a row under idleCores.
func nextLoadState(busy bool, quiet int, cores float64) (bool, int) {
	switch {
	case cores >= busyCores:
		return true, 0
	case cores < idleCores:
		quiet++
	default:
		quiet = 0
	}
	if busy && quiet >= idleSamples {
		return false, quiet
	}
	return busy, quiet
}

// cpuSeconds is the user and system CPU time of every thread of this
// process so far.
func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	seconds := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return seconds(usage.Utime) + seconds(usage.Stime)
}

func setGCPercent(percent int) {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(percent)
	}
}
