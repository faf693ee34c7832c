package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
	"github.com/monokube/monokube/test/history"
)

// plan is what one run does, from the environment `make faults` and
// `make faults-slice` set.
type plan struct {
	shapes       []string
	duration     time.Duration // of the workload under faults, per shape
	workerCutOff time.Duration // how long the worker is cut off from every server
	clients      int
	seed         uint64
	report       string // a file the per-shape lines are appended to
}

func planFromEnv(t *testing.T) plan {
	p := plan{shapes: []string{"etcd"}, duration: 2 * time.Minute, workerCutOff: 45 * time.Second, clients: 6,
		seed: uint64(time.Now().UnixNano()), report: os.Getenv("MONOKUBE_FAULTS_REPORT")}
	if shapes := os.Getenv("MONOKUBE_FAULTS_SHAPES"); shapes != "" {
		p.shapes = strings.Split(shapes, ",")
	}
	for name, target := range map[string]*time.Duration{"MONOKUBE_FAULTS_DURATION": &p.duration, "MONOKUBE_FAULTS_WORKER_CUTOFF": &p.workerCutOff} {
		if value := os.Getenv(name); value != "" {
			d, err := time.ParseDuration(value)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			*target = d
		}
	}
	if seed, err := strconv.ParseUint(os.Getenv("MONOKUBE_FAULTS_SEED"), 10, 64); err == nil {
		p.seed = seed
	}
	t.Logf("faults plan: shapes %v, %s each, worker cut off %s, %d clients, MONOKUBE_FAULTS_SEED=%d",
		p.shapes, p.duration, p.workerCutOff, p.clients, p.seed)
	return p
}

// TestFaults runs the workload on each shape under its faults and checks
// the history.
func TestFaults(t *testing.T) {
	p := planFromEnv(t)
	for _, name := range p.shapes {
		t.Run(name, func(t *testing.T) {
			var s *shape
			switch name {
			case "sqlite":
				s = sqliteShape(t)
			case "etcd":
				s = etcdShape(t)
			case "postgres":
				s = postgresShape(t)
			default:
				t.Fatalf("unknown shape %q (sqlite, etcd, postgres)", name)
			}
			s.run(t, p)
		})
	}
}

// shape is a cluster and the faults it gets.
type shape struct {
	title   string
	servers []*server
	// peers are machines a partition also cuts the victim from.
	peers []*harness.Node
	// worker, when set, is cut off from every server once during the run
	// and must keep its pod serving.
	worker *harness.Node
	// chaos are the faults injected besides kill -9, in turn.
	chaos []string
	// dataDir is the server's data dir that "disk full" fills.
	dataDir string
	// after checks the shape's own promises once the run is over; final
	// is what the last reads found.
	after func(t *testing.T, final map[string]history.Object)
}

func (s *shape) run(t *testing.T, p plan) {
	var endpoints []endpoint
	for _, srv := range s.servers {
		e, err := newEndpoint(srv.name(), srv.AdminKubeconfig())
		if err != nil {
			t.Fatal(err)
		}
		endpoints = append(endpoints, e)
	}
	s.servers[0].MustKubectl("create", "namespace", namespace)
	w := newWorkload(8, endpoints)
	in := newInjector(t, p.seed, s.servers, s.peers)

	ctx, stop := context.WithTimeout(context.Background(), p.duration)
	defer stop()
	var cut *cutOff
	if s.worker != nil {
		cut = startCutOff(t, s, p.workerCutOff)
	}
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){in.killLoop, in.watchExits, func(ctx context.Context) { in.chaosLoop(ctx, s.chaos, s.dataDir) }} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	began := time.Now()
	w.run(ctx, p.clients, p.seed)
	wg.Wait()
	if cut != nil {
		cut.finish(t, s)
	}
	t.Logf("workload and faults ended after %s; every server back", time.Since(began).Round(time.Second))
	for _, srv := range s.servers {
		if srv.Exited() {
			srv.restart()
		}
		// Not WaitReady: it waits for a start's ready line, and a server
		// the run never killed logs none.
		harness.Poll(t, 3*time.Minute, srv.name()+" /readyz", func(ctx context.Context) (bool, error) {
			body, err := srv.Client().Discovery().RESTClient().Get().AbsPath("/readyz").DoRaw(ctx)
			return err == nil && string(body) == "ok", nil
		})
	}
	final, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	finalState, err := w.finalReads(final)
	if err != nil {
		t.Fatal(err)
	}

	ops := w.rec.Ops()
	if dir := os.Getenv("MONOKUBE_FAULTS_HISTORY"); dir != "" {
		saveHistory(t, filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+".json"), ops)
	}
	checked := time.Now()
	report := history.Check(ops, w.keys, 5*time.Minute, filepath.Join(t.TempDir(), "history.html"))
	gap, gapAt := longestUnavailability(ops)
	failovers, median, longest := w.failoverSummary()
	line := fmt.Sprintf("%s: %d operations recorded in %s (%s); faults injected %s; linearizability violations %d; acknowledged writes lost %d; "+
		"longest API unavailability seen by the clients %s (from %s); client failovers %d, median %s, longest %s; writes refused for a full disk %d",
		s.title, len(ops), p.duration, mix(report), in.summary(), len(report.Violations), len(report.Lost),
		gap.Round(10*time.Millisecond), gapAt.Format(time.TimeOnly), failovers, median.Round(10*time.Millisecond), longest.Round(10*time.Millisecond), w.diskFull)
	t.Log(line)
	t.Logf("history checked in %s:\n%s", time.Since(checked).Round(time.Millisecond), report)
	for _, kind := range []string{"partition", "kill -9"} {
		if windows := in.windows(kind); len(windows) > 0 {
			t.Logf("longest time a client went unanswered during a %s: %s", kind, longestClientGap(ops, windows).Round(10*time.Millisecond))
		}
	}
	if windows := in.windows("disk full"); len(windows) > 0 {
		reads, writes, after := servedDuring(ops, windows)
		t.Logf("while the disk was full: %d reads answered, %d writes acknowledged, %d writes refused as disk full; %d writes acknowledged after space returned",
			reads, writes, w.diskFull, after)
		if reads == 0 || w.diskFull == 0 || after == 0 {
			t.Errorf("a full disk: reads must go on being served (%d), writes refused with the reason (%d), and taken again once space returns (%d)", reads, w.diskFull, after)
		}
	}
	if p.report != "" {
		if f, err := os.OpenFile(p.report, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
			fmt.Fprintln(f, line)
			f.Close()
		}
	}
	for _, exit := range in.exits {
		t.Logf("not injected: %s", exit)
	}
	if !report.OK() || len(report.Unchecked) > 0 {
		t.Errorf("the history is not what a linearizable store that loses nothing gives:\n%s", report)
	}
	if s.after != nil {
		s.after(t, finalState)
	}
}

// saveHistory writes the recorded operations as JSON, for a closer look
// at a violation than porcupine's visualization gives
// (MONOKUBE_FAULTS_HISTORY=dir).
func saveHistory(t *testing.T, path string, ops []history.Op) {
	raw, err := json.Marshal(ops)
	if err == nil {
		err = os.WriteFile(path, raw, 0o644)
	}
	if err != nil {
		t.Errorf("save the history: %v", err)
		return
	}
	t.Logf("history saved to %s", path)
}

// servedDuring counts the reads answered and the writes acknowledged
// inside the windows, and the writes acknowledged between the end of one
// and the start of the next (space back).
func servedDuring(ops []history.Op, windows []fault) (reads, writes, after int) {
	for _, op := range ops {
		inside, between := false, false
		for i, w := range windows {
			inside = inside || (op.Call.After(w.start) && op.Return.Before(w.end))
			next := time.Now()
			if i+1 < len(windows) {
				next = windows[i+1].start
			}
			between = between || (op.Call.After(w.end) && op.Return.Before(next))
		}
		write := op.Kind == history.Create || op.Kind == history.Update || op.Kind == history.Delete
		switch {
		case inside && !write && op.Outcome != history.Unknown:
			reads++
		case inside && write && op.Outcome == history.OK:
			writes++
		case between && write && op.Outcome == history.OK:
			after++
		}
	}
	return reads, writes, after
}

// mix is the operations by kind, and how many writes got no answer.
func mix(r history.Report) string {
	var parts []string
	for _, kind := range []history.Kind{history.Create, history.Update, history.Delete, history.Get, history.List} {
		parts = append(parts, fmt.Sprintf("%s %d", kind, r.ByKind[kind]))
	}
	return strings.Join(parts, ", ") + fmt.Sprintf("; unanswered writes %d", r.ByOutcome[history.Unknown])
}

// longestClientGap is the longest stretch, starting inside one of the
// windows, between a call that got no answer and the next answer the same
// client got (the failover a client lived through).
func longestClientGap(ops []history.Op, windows []fault) time.Duration {
	byClient := map[int][]history.Op{}
	for _, op := range ops {
		byClient[op.Client] = append(byClient[op.Client], op)
	}
	var longest time.Duration
	for _, list := range byClient {
		var last time.Time
		for _, op := range list {
			if op.Outcome == history.Unknown {
				continue
			}
			if !last.IsZero() {
				for _, w := range windows {
					if last.After(w.start.Add(-time.Second)) && last.Before(w.end) {
						if d := op.Return.Sub(last); d > longest {
							longest = d
						}
					}
				}
			}
			last = op.Return
		}
	}
	return longest
}

// sqliteShape is one server on SQLite (on loopback: there is no network
// between servers to break), its data dir on a small tmpfs that the
// injector fills.
func sqliteShape(t *testing.T) *shape {
	srv := harness.NewServer(t, "")
	srv.SmallDataDir("1700m")
	srv.StartReady()
	s := &shape{title: "SQLite, 1 server", chaos: []string{"disk full"}, dataDir: srv.DataDir,
		servers: []*server{{Server: srv, restart: srv.Start}}}
	s.after = func(t *testing.T, _ map[string]history.Object) {
		if code, _, err := srv.Terminate(30 * time.Second); err != nil || code != 0 {
			t.Errorf("stop: exit %d, %v", code, err)
		}
		srv.CheckSQLiteIntegrity()
	}
	return s
}

// etcdSpec runs a server on embedded etcd.
const etcdSpec = "  storage:\n    type: etcd\n"

// etcdShape is three servers on embedded etcd and a worker with a pod.
func etcdShape(t *testing.T) *shape {
	c := harness.NewCluster(t, etcdSpec)
	nodes := c.StartServers(3, etcdSpec)
	worker := c.AddWorker()
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(worker)
	s := &shape{title: "embedded etcd, 3 servers + 1 worker", worker: worker, peers: []*harness.Node{worker},
		chaos: []string{"partition", "loss", "slow link"}}
	for _, n := range nodes {
		s.servers = append(s.servers, &server{Server: n.Server, node: n, restart: func() { n.StartServer() }})
	}
	s.after = func(t *testing.T, final map[string]history.Object) {
		backupRestoreEtcd(t, c, nodes[1], final)
	}
	return s
}

// backupRestoreEtcd backs the running three-server cluster up through one
// server given only its data dir, restores the archive on a new machine
// as root with no environment set, starts a server there and finds every
// object the clients last read, unchanged.
func backupRestoreEtcd(t *testing.T, c *harness.Cluster, from *harness.Node, final map[string]history.Object) {
	from.Env = harness.UserEnv
	out, err := from.InNode(from.Bin, "backup", "--data-dir", from.DataDir, "--save-path", t.TempDir())
	if err != nil {
		t.Fatalf("backup of the three-server cluster: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	archive := lines[len(lines)-1]
	t.Logf("backup: %s", archive)
	target := c.NewNode(etcdSpec)
	target.Env = harness.UserEnv
	if out, err := target.InNode(target.Bin, "restore", archive, "--data-dir", target.DataDir); err != nil {
		t.Fatalf("restore into a new data dir: %v\n%s", err, out)
	}
	target.StartServer()
	target.WaitReady(3 * time.Minute)
	list, err := target.Client().CoreV1().ConfigMaps(namespace).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	restored := map[string]history.Object{}
	for _, cm := range list.Items {
		if value, ok := cm.Data["v"]; ok { // not kube-root-ca.crt
			restored[cm.Name] = history.Object{Value: value, RV: cm.ResourceVersion}
		}
	}
	for key, want := range final {
		if got := restored[key]; got.Value != want.Value {
			t.Errorf("restored %s holds %q, the cluster had %q at the backup", key, got.Value, want.Value)
		}
	}
	if len(restored) != len(final) {
		t.Errorf("restored %d objects, the cluster had %d: %v", len(restored), len(final), restored)
	}
	t.Logf("backup of the three servers restored on a fresh machine: %d objects as the clients last read them", len(final))
}

// postgresShape is two servers on one PostgreSQL, which runs on a machine
// of its own on the same network.
func postgresShape(t *testing.T) *shape {
	c := harness.NewCluster(t, "")
	database := c.NewNode("")
	db := harness.StartPostgres(t, database, c.Network.Subnet)
	spec := fmt.Sprintf("  storage:\n    type: postgres\n    dataSource: %q\n", db.DSN)
	first, second := c.Server, c.NewNode(spec)
	first.WriteConfig("", spec)
	first.StartServer()
	first.WaitReady(3 * time.Minute)
	second.StartServer("--token", first.ControllerToken())
	second.WaitReady(3 * time.Minute)
	s := &shape{title: "PostgreSQL, 2 servers", peers: []*harness.Node{database}, chaos: []string{"partition", "loss", "slow link"}}
	for _, n := range []*harness.Node{first, second} {
		s.servers = append(s.servers, &server{Server: n.Server, node: n, restart: func() { n.StartServer() }})
	}
	return s
}

// cutOff is a worker cut off from every server for a while, with a pod
// that must keep serving and a process that must not restart.
type cutOff struct {
	pid          int
	pod          *corev1.Pod
	began        time.Time
	served, lost int
	// notReady is how long after the cut the cluster saw the worker not
	// Ready (0: never).
	notReady time.Duration
	long     bool
	done     chan struct{}
}

const webPod = `apiVersion: v1
kind: Pod
metadata:
  name: web
  namespace: default
spec:
  nodeName: %s
  # The default toleration evicts a pod 300 s after its node became
  # unreachable; the cut-off lasts up to 5 minutes and this checks the
  # pod rides it out on the node, not the eviction policy.
  tolerations:
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 900}
  - {key: node.kubernetes.io/not-ready, operator: Exists, effect: NoExecute, tolerationSeconds: 900}
  containers:
  - name: web
    image: %s
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo faults-ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
`

// startCutOff runs a pod on the worker, then cuts the worker off from
// every server 15 s into the run for d, checking every 5 s from the
// worker's own network that the pod still answers.
func startCutOff(t *testing.T, s *shape, d time.Duration) *cutOff {
	w := s.worker
	s.servers[0].Apply(fmt.Sprintf(webPod, w.Name, harness.BusyboxImage))
	pod := harness.WaitPhase(t, s.servers[0].Client(), "default", "web", corev1.PodRunning)
	// Longer than the node-monitor grace period (50 s): the cluster should
	// see the worker go not Ready.
	c := &cutOff{pid: w.PID(), pod: pod, long: d > 2*time.Minute, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		time.Sleep(15 * time.Second)
		for _, srv := range s.servers {
			if err := harness.Cut(w, srv.node, cutOffLayer); err != nil {
				t.Errorf("cut the worker off: %v", err)
			}
		}
		c.began = time.Now()
		for time.Since(c.began) < d {
			if strings.Contains(w.HTTPFrom(pod.Status.PodIP, 8080), "faults-ok") {
				c.served++
			} else {
				c.lost++
			}
			if c.notReady == 0 && !workerReady(s) {
				c.notReady = time.Since(c.began)
			}
			time.Sleep(5 * time.Second)
		}
		for _, srv := range s.servers {
			if err := harness.Heal(w, srv.node, cutOffLayer); err != nil {
				t.Errorf("heal the worker: %v", err)
			}
		}
		t.Logf("worker %s was cut off from every server for %s; its pod answered %d of %d checks", w.Name, time.Since(c.began).Round(time.Second), c.served, c.served+c.lost)
	}()
	return c
}

// workerReady reports the worker's Ready condition as the first server
// that answers sees it (true when none answers: nothing was seen).
func workerReady(s *shape) bool {
	for _, srv := range s.servers {
		if srv.Exited() {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		n, err := srv.Client().CoreV1().Nodes().Get(ctx, s.worker.Name, metav1.GetOptions{})
		cancel()
		if err == nil {
			return harness.NodeReady(n)
		}
	}
	return true
}

// finish waits for the cut-off to end and checks the worker came back
// Ready with the same process and the same pod, never restarted.
func (c *cutOff) finish(t *testing.T, s *shape) {
	<-c.done
	if c.lost > 0 || c.served == 0 {
		t.Errorf("the worker's pod answered %d of %d checks while the worker was cut off", c.served, c.served+c.lost)
	}
	switch {
	case c.notReady > 0:
		t.Logf("the cluster saw the cut-off worker not Ready %s after the cut", c.notReady.Round(time.Second))
	case c.long:
		// Not a failure: with servers killed every 20-40 s the controller
		// leading node lifecycle may change before its grace period ends.
		t.Logf("the cluster never saw the worker not Ready in a cut-off of %s", time.Since(c.began).Round(time.Second))
	}
	healed := time.Now()
	var client = s.servers[0].Client()
	harness.Poll(t, 3*time.Minute, "the worker Ready again", func(ctx context.Context) (bool, error) {
		for _, srv := range s.servers {
			if srv.Exited() {
				continue
			}
			n, err := srv.Client().CoreV1().Nodes().Get(ctx, s.worker.Name, metav1.GetOptions{})
			if err == nil {
				client = srv.Client()
				return harness.NodeReady(n), nil
			}
		}
		return false, nil
	})
	t.Logf("the worker was Ready %s after the cut-off ended", time.Since(healed).Round(100*time.Millisecond))
	if s.worker.Exited() || s.worker.PID() != c.pid {
		t.Errorf("the worker process did not ride out the cut-off (exited %v, pid %d, was %d)", s.worker.Exited(), s.worker.PID(), c.pid)
	}
	pod, err := client.CoreV1().Pods("default").Get(context.Background(), "web", metav1.GetOptions{})
	switch {
	case err != nil:
		t.Errorf("the worker's pod after the cut-off: %v", err)
	case pod.UID != c.pod.UID || pod.Status.Phase != corev1.PodRunning:
		t.Errorf("the worker's pod after the cut-off: uid %s (was %s), phase %s", pod.UID, c.pod.UID, pod.Status.Phase)
	case len(pod.Status.ContainerStatuses) != 1 || pod.Status.ContainerStatuses[0].RestartCount != 0:
		t.Errorf("the worker's pod's container restarted: %+v", pod.Status.ContainerStatuses)
	}
}
