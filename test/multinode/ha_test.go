package multinode

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/test/harness"
)

// etcdSpec runs every server on embedded etcd.
const etcdSpec = "  storage:\n    type: etcd\n"

func memberList(t *testing.T, n *harness.Node) string {
	t.Helper()
	out, err := n.InNode(n.Bin, "etcd", "member-list", "--data-dir", n.DataDir)
	if err != nil {
		t.Fatalf("etcd member-list on %s: %v\n%s", n.Name, err, out)
	}
	return out
}

// writer creates ConfigMaps through whichever server answers and records
// the ones the API acknowledged.
type writer struct {
	mu    sync.Mutex
	acked []string
	tries int
}

func (w *writer) run(t *testing.T, clients func() []kubernetes.Interface, count int, prefix string) {
	for i := range count {
		name := fmt.Sprintf("%s-%03d", prefix, i)
		object := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: map[string]string{"i": fmt.Sprint(i)}}
		for attempt := 0; ; attempt++ {
			list := clients()
			client := list[(i+attempt)%len(list)]
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_, err := client.CoreV1().ConfigMaps("default").Create(ctx, object, metav1.CreateOptions{})
			cancel()
			w.mu.Lock()
			w.tries++
			w.mu.Unlock()
			if err == nil || strings.Contains(err.Error(), "already exists") {
				w.mu.Lock()
				w.acked = append(w.acked, name)
				w.mu.Unlock()
				break
			}
			if attempt > 60 {
				t.Errorf("create %s: giving up: %v", name, err)
				return
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// missing lists the acknowledged ConfigMaps a server does not have.
func (w *writer) missing(t *testing.T, client kubernetes.Interface) []string {
	t.Helper()
	list, err := client.CoreV1().ConfigMaps("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list configmaps: %v", err)
	}
	have := map[string]bool{}
	for _, cm := range list.Items {
		have[cm.Name] = true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	var missing []string
	for _, name := range w.acked {
		if !have[name] {
			missing = append(missing, name)
		}
	}
	return missing
}

// leaseRenewed reports when the node's kubelet last renewed its lease.
func leaseRenewed(t *testing.T, client kubernetes.Interface, node string) time.Time {
	t.Helper()
	var lease *coordinationv1.Lease
	harness.Poll(t, 30*time.Second, "lease of "+node, func(ctx context.Context) (bool, error) {
		var err error
		lease, err = client.CoordinationV1().Leases("kube-node-lease").Get(ctx, node, metav1.GetOptions{})
		return err == nil && lease.Spec.RenewTime != nil, nil
	})
	return lease.Spec.RenewTime.Time
}

// TestHAEmbeddedEtcd runs three servers on embedded etcd and a worker: a
// server killed with kill -9 loses no acknowledged write, the worker's
// load balancer moves to a live server, the killed server catches up on
// restart; then quorum is lost and recovered with --cluster-reset.
func TestHAEmbeddedEtcd(t *testing.T) {
	c := harness.NewCluster(t, etcdSpec)
	servers := []*harness.Node{c.Server, c.NewNode(etcdSpec), c.NewNode(etcdSpec)}
	for _, s := range servers {
		s.WriteConfig("    encryptionAtRest: true\n", etcdSpec)
	}
	servers[0].StartServer()
	servers[0].WaitReady(3 * time.Minute)

	// A worker token may not make a server.
	if _, stderr, err := servers[1].Run("server", "--config", servers[1].ConfigPath, "--token", c.Token()); err == nil || !strings.Contains(stderr, "worker token") {
		t.Fatalf("server with a worker token: err %v, want a refusal naming the worker token\n%s", err, lastLines(stderr, 5))
	}
	token := servers[0].ControllerToken()
	servers[1].StartServer("--token", token)
	servers[1].WaitReady(3 * time.Minute)
	// The third server is a node too: its kubelet must not wait for a
	// controller-manager that follows another server's.
	servers[2].StartServer("--token", token, "--enable-worker", "--cgroup-root", servers[2].CgroupRoot)
	servers[2].WaitReady(3 * time.Minute)
	list := memberList(t, servers[0])
	for _, s := range servers {
		if !strings.Contains(list, s.Name) || strings.Contains(list, "learner") {
			t.Fatalf("member list lacks voter %s:\n%s", s.Name, list)
		}
	}
	t.Logf("etcd members:\n%s", list)

	worker := c.AddWorker()
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(worker, servers[2])
	lease, err := servers[0].Client().CoordinationV1().Leases("kube-system").Get(context.Background(), "monokube-controllers", metav1.GetOptions{})
	if err != nil || lease.Spec.HolderIdentity == nil || !strings.HasPrefix(*lease.Spec.HolderIdentity, "node") {
		t.Fatalf("the add-on controllers' lease has no server holding it: %v %+v", err, lease)
	}

	rotateSecretsKeyOnAll(t, servers)
	rotateCAOnAll(t, servers, worker)

	// Writes go on while the first server (the worker's first choice)
	// is killed.
	alive := []bool{true, true, true}
	var aliveMu sync.Mutex
	clients := func() []kubernetes.Interface {
		aliveMu.Lock()
		defer aliveMu.Unlock()
		var out []kubernetes.Interface
		for i, s := range servers {
			if alive[i] {
				out = append(out, s.Client())
			}
		}
		return out
	}
	w := &writer{}
	done := make(chan struct{})
	go func() { defer close(done); w.run(t, clients, 300, "during-kill") }()
	harness.Poll(t, time.Minute, "first 100 writes", func(context.Context) (bool, error) {
		w.mu.Lock()
		defer w.mu.Unlock()
		return len(w.acked) >= 100, nil
	})
	aliveMu.Lock()
	alive[0] = false
	aliveMu.Unlock()
	killed := time.Now()
	servers[0].Kill()
	<-done
	if missing := w.missing(t, servers[1].Client()); len(missing) > 0 {
		t.Fatalf("%d acknowledged writes missing after kill -9 of a server: %v", len(missing), missing)
	}
	t.Logf("%d writes acknowledged in %d attempts while %s was killed", len(w.acked), w.tries, servers[0].Name)

	// The worker's kubelet renews its lease through another server.
	harness.Poll(t, 45*time.Second, "worker lease renewed after the kill", func(context.Context) (bool, error) {
		return leaseRenewed(t, servers[1].Client(), worker.Name).After(killed), nil
	})
	t.Logf("worker lease renewed %s after the kill", time.Since(killed).Round(time.Second))
	c.Server = servers[1] // for WaitReady's client
	c.WaitReady(worker)

	// The killed server comes back and catches up.
	servers[0].StartServer()
	servers[0].WaitReady(3 * time.Minute)
	aliveMu.Lock()
	alive[0] = true
	aliveMu.Unlock()
	harness.Poll(t, time.Minute, servers[0].Name+" caught up", func(context.Context) (bool, error) {
		return len(w.missing(t, servers[0].Client())) == 0, nil
	})

	// Quorum loss: two servers gone with their data; the survivor resets.
	for _, s := range servers[1:] {
		s.Kill()
		if err := os.RemoveAll(s.DataDir); err != nil {
			t.Fatal(err)
		}
	}
	servers[0].Kill()
	servers[0].StartIn("server", "--data-dir", servers[0].DataDir, "--config", servers[0].ConfigPath, "--node-name", servers[0].Name, "--cluster-reset")
	if code, err := servers[0].WaitExit(2 * time.Minute); code != 0 || err != nil {
		t.Fatalf("server --cluster-reset: exit %d, %v", code, err)
	}
	servers[0].StartServer()
	servers[0].WaitReady(3 * time.Minute)
	if missing := w.missing(t, servers[0].Client()); len(missing) > 0 {
		t.Fatalf("%d acknowledged writes missing after --cluster-reset: %v", len(missing), missing)
	}
	list = memberList(t, servers[0])
	if strings.Contains(list, servers[1].Name) || strings.Contains(list, servers[2].Name) {
		t.Fatalf("members after reset still list the lost servers:\n%s", list)
	}
	// A fresh server joins the recovered cluster.
	servers[1].StartServer("--token", servers[0].ControllerToken())
	servers[1].WaitReady(3 * time.Minute)
	if list = memberList(t, servers[0]); !strings.Contains(list, servers[1].Name) {
		t.Fatalf("rejoined server missing from members:\n%s", list)
	}
	if missing := w.missing(t, servers[1].Client()); len(missing) > 0 {
		t.Fatalf("rejoined server lacks %d objects", len(missing))
	}
}

// rotateSecretsKeyOnAll runs a secrets-encryption key rotation on one
// server: every server's API server must take the new key (the joined ones
// got the first key with the cluster's keys), and a Secret must read the
// same through each of them after the old key is gone.
func rotateSecretsKeyOnAll(t *testing.T, servers []*harness.Node) {
	t.Helper()
	servers[0].MustKubectl("create", "secret", "generic", "ha-secret", "--from-literal=v=kept")
	start := time.Now()
	for _, verb := range []string{"rotate", "reencrypt"} {
		out, err := servers[1].InNode(servers[1].Bin, "secrets-encrypt", verb, "--data-dir", servers[1].DataDir)
		if err != nil {
			t.Fatalf("secrets-encrypt %s on %s: %v\n%s", verb, servers[1].Name, err, out)
		}
	}
	t.Logf("secrets-encrypt rotate + reencrypt on 3 servers: %s", time.Since(start).Round(100*time.Millisecond))
	status, err := servers[2].InNode(servers[2].Bin, "secrets-encrypt", "status", "--data-dir", servers[2].DataDir)
	if err != nil {
		t.Fatalf("secrets-encrypt status: %v\n%s", err, status)
	}
	for _, s := range servers {
		config, err := os.ReadFile(filepath.Join(s.DataDir, "pki", "encryption-config.yaml"))
		if err != nil || !strings.Contains(string(config), "monokube-2") || strings.Contains(string(config), "monokube-1") {
			t.Fatalf("%s's encryption config after the rotation (want only monokube-2): %v\n%s\nstatus:\n%s", s.Name, err, config, status)
		}
		if !hasStatusLine(status, s.Name, s.IP, "yes", "monokube-2") {
			t.Fatalf("status has no line for %s running with monokube-2 loaded:\n%s", s.Name, status)
		}
		if got := s.MustKubectl("get", "secret", "ha-secret", "-o", "jsonpath={.data.v}"); got != "a2VwdA==" {
			t.Fatalf("ha-secret through %s reads %q", s.Name, got)
		}
	}
	t.Logf("secrets-encrypt status:\n%s", status)
}

func hasStatusLine(text string, parts ...string) bool {
	for _, line := range strings.Split(text, "\n") {
		fields := strings.Fields(line)
		all := true
		for _, part := range parts {
			all = all && slices.Contains(fields, part)
		}
		if all {
			return true
		}
	}
	return false
}
