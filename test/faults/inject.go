package faults

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/monokube/monokube/test/harness"
)

// server is one API server of a shape, which the injector may kill and
// restart.
type server struct {
	*harness.Server
	// node is the namespaced machine the server runs on; nil for a server
	// on loopback (the SQLite shape, which has no network to break).
	node *harness.Node
	// restart starts the server again on its data dir after a kill.
	restart func()
}

// The route layers (harness.Cut) of a partition and of the worker's
// cut-off, which may overlap.
const (
	partitionLayer = 1
	cutOffLayer    = 2
)

// fault is one injected fault and how long it lasted.
type fault struct {
	kind, target string
	start, end   time.Time
}

// injector injects the faults of a shape while the workload runs and
// remembers what it did.
type injector struct {
	t       testing.TB
	rng     *rand.Rand
	servers []*server
	// peers are the machines a partitioned server is cut from, besides the
	// other servers: workers, a database's machine.
	peers []*harness.Node

	mu     sync.Mutex
	faults []fault
	// exits are servers that ended without being killed, with the end of
	// their log.
	exits []string
	// killed marks servers the injector killed and has not restarted yet.
	killed map[*server]bool
	// diskFull is set while the data dir's disk is full: a start refuses a
	// disk that full (sysinfo's check), so a kill then would measure that
	// refusal instead of how a full disk is served.
	diskFull bool
	// killing is set from a kill to the restart after it: a disk filled
	// then would make that restart refuse, the same measure as above.
	killing bool
}

func newInjector(t testing.TB, seed uint64, servers []*server, peers []*harness.Node) *injector {
	return &injector{t: t, rng: rand.New(rand.NewPCG(seed, 99)), servers: servers, peers: peers, killed: map[*server]bool{}}
}

func (in *injector) note(f fault) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.faults = append(in.faults, f)
	in.t.Logf("fault: %s %s for %s", f.kind, f.target, f.end.Sub(f.start).Round(100*time.Millisecond))
}

func (in *injector) between(low, high time.Duration) time.Duration {
	in.mu.Lock()
	defer in.mu.Unlock()
	return low + time.Duration(in.rng.Int64N(int64(high-low)))
}

func (in *injector) pick(n int) int {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.rng.IntN(n)
}

// sleep waits d, or less if ctx ends; it reports whether ctx is still on.
func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// killLoop kills a random server with SIGKILL every 20–40 s and starts it
// again 1–3 s later, as a supervisor (systemd's Restart=always) would.
func (in *injector) killLoop(ctx context.Context) {
	for sleep(ctx, in.between(20*time.Second, 40*time.Second)) {
		for in.isDiskFull() && sleep(ctx, time.Second) {
		}
		victim := in.servers[in.pick(len(in.servers))]
		start := time.Now()
		in.mu.Lock()
		in.killed[victim] = true
		in.killing = true
		in.mu.Unlock()
		victim.Kill()
		sleep(ctx, in.between(time.Second, 3*time.Second))
		victim.restart()
		in.mu.Lock()
		delete(in.killed, victim)
		in.killing = false
		in.mu.Unlock()
		in.note(fault{kind: "kill -9", target: victim.name(), start: start, end: time.Now()})
	}
}

// watchExits restarts a server that ended by itself, and remembers it: a
// fault the test did not inject.
func (in *injector) watchExits(ctx context.Context) {
	for sleep(ctx, time.Second) {
		for _, s := range in.servers {
			in.mu.Lock()
			killed := in.killed[s]
			in.mu.Unlock()
			if killed || !s.Exited() {
				continue
			}
			log := s.Log()
			// Why it ended is logged before the stop's many lines.
			why := harness.GrepLines(log, "A component failed") + harness.GrepLines(log, "ended the process") + harness.GrepLines(log, "Received signal")
			if len(log) > 3000 {
				log = log[len(log)-3000:]
			}
			log = why + "\n...\n" + log
			in.mu.Lock()
			in.exits = append(in.exits, fmt.Sprintf("%s exited at %s without a kill; its log ends:\n%s", s.name(), time.Now().Format(time.TimeOnly), log))
			in.mu.Unlock()
			in.t.Logf("%s exited by itself; starting it again", s.name())
			s.restart()
		}
	}
}

// chaosLoop injects the shape's other faults one after another, each for
// 10–20 s with 5–10 s of calm between them, until ctx ends; each is
// undone before the next.
func (in *injector) chaosLoop(ctx context.Context, kinds []string, dataDir string) {
	for i := 0; sleep(ctx, in.between(5*time.Second, 10*time.Second)); i++ {
		kind := kinds[i%len(kinds)]
		for kind == "disk full" && in.isKilling() && sleep(ctx, time.Second) {
		}
		hold := in.between(10*time.Second, 20*time.Second)
		victim := in.servers[in.pick(len(in.servers))]
		start := time.Now()
		undo, target := in.inject(kind, victim, dataDir)
		sleep(ctx, hold)
		undo()
		in.note(fault{kind: kind, target: target, start: start, end: time.Now()})
	}
}

// inject starts one fault and returns what ends it.
func (in *injector) inject(kind string, victim *server, dataDir string) (undo func(), target string) {
	t := in.t
	switch kind {
	case "partition":
		var cut []string
		for _, other := range in.nodesBut(victim) {
			if err := harness.Cut(victim.node, other, partitionLayer); err != nil {
				t.Errorf("partition: %v", err)
			}
			cut = append(cut, other.Name)
		}
		return func() {
			for _, other := range in.nodesBut(victim) {
				if err := harness.Heal(victim.node, other, partitionLayer); err != nil {
					t.Errorf("heal: %v", err)
				}
			}
		}, victim.name() + " from " + strings.Join(cut, ",")
	case "loss":
		if err := victim.node.Lossy(10); err != nil {
			t.Errorf("loss: %v", err)
		}
		return func() {
			if err := victim.node.Lossy(0); err != nil {
				t.Errorf("loss: %v", err)
			}
		}, victim.name() + " (10% of packets dropped each way)"
	case "slow link":
		if err := victim.node.SlowLink("1mbit", "400ms"); err != nil {
			t.Errorf("slow link: %v", err)
		}
		return func() {
			if err := victim.node.SlowLink("", ""); err != nil {
				t.Errorf("slow link: %v", err)
			}
		}, victim.name() + " (1 Mbit/s out, queue up to 400 ms)"
	case "disk full":
		filler := filepath.Join(dataDir, "filler")
		in.setDiskFull(true)
		harness.FillDisk(t, filler)
		return func() {
			if err := os.Remove(filler); err != nil {
				t.Errorf("disk full: %v", err)
			}
			in.setDiskFull(false)
		}, "the data dir's file system"
	}
	t.Fatalf("unknown fault %q", kind)
	return nil, ""
}

func (in *injector) setDiskFull(full bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.diskFull = full
}

func (in *injector) isKilling() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.killing
}

func (in *injector) isDiskFull() bool {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.diskFull
}

// nodesBut is every machine of the shape except the victim's.
func (in *injector) nodesBut(victim *server) []*harness.Node {
	var nodes []*harness.Node
	for _, s := range in.servers {
		if s != victim && s.node != nil {
			nodes = append(nodes, s.node)
		}
	}
	return append(nodes, in.peers...)
}

func (s *server) name() string {
	if s.node != nil {
		return s.node.Name
	}
	return "server"
}

// summary counts the injected faults by kind.
func (in *injector) summary() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	counts := map[string]int{}
	for _, f := range in.faults {
		counts[f.kind]++
	}
	var parts []string
	for kind, n := range counts {
		parts = append(parts, fmt.Sprintf("%s ×%d", kind, n))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d (%s)", len(in.faults), strings.Join(parts, ", "))
}

// windows are the faults of one kind, for what clients saw during them.
func (in *injector) windows(kind string) []fault {
	in.mu.Lock()
	defer in.mu.Unlock()
	var out []fault
	for _, f := range in.faults {
		if f.kind == kind {
			out = append(out, f)
		}
	}
	return out
}
