package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/monokube/monokube/internal/cgroups"
	"github.com/monokube/monokube/internal/fleet"
	"github.com/monokube/monokube/test/harness"
)

// probeResult is what the prober counted during an upgrade.
type probeResult struct {
	APIRequests  int `json:"api_requests"`
	APIFailed    int `json:"api_failed"`
	HTTPRequests int `json:"http_requests"`
	HTTPFailed   int `json:"http_failed"`
}

// TestRollingUpgrade upgrades a local cluster of 3 servers (embedded etcd)
// and 2 workers from one build (MONOKUBE_UPGRADE_FROM) to another
// (MONOKUBE_UPGRADE_TO) with `monokube cluster apply`, while a prober in a
// worker's network namespace asks the API through the worker's load
// balancer 10 times a second and a 2-replica Deployment with a
// PodDisruptionBudget behind a LoadBalancer Service 10 times a second; it
// reports both counts. Then a budget that allows no disruption stops the
// next upgrade with a message naming the host and the budget, and a rerun
// after relaxing it finishes. `make upgrade-bench` builds the two binaries.
func TestRollingUpgrade(t *testing.T) {
	from, to := os.Getenv("MONOKUBE_UPGRADE_FROM"), os.Getenv("MONOKUBE_UPGRADE_TO")
	if from == "" || to == "" {
		t.Skip("run `make upgrade-bench` (two builds of monokube)")
	}
	name := fmt.Sprintf("up%d", time.Now().Unix()%100000)
	own, err := cgroups.Own()
	if err != nil {
		t.Fatal(err)
	}
	parent := filepath.Join(own, "mk"+name)
	harness.RegisterCgroupRoot(parent)
	home := t.TempDir()
	file := filepath.Join(home, "cluster.yaml")
	hosts := ""
	for i := 1; i <= 5; i++ {
		role := "server"
		if i > 3 {
			role = "worker"
		}
		hosts += fmt.Sprintf("    - {name: %s-%d, role: %s}\n", name, i, role)
	}
	spec := fmt.Sprintf("apiVersion: monokube.io/v1beta1\nkind: Cluster\nmetadata: {name: %s}\nspec:\n  provider: local\n"+
		"  local: {cgroupParent: %s}\n  config:\n    storage: {type: etcd}\n    addons: {traefik: {enabled: false}}\n  hosts:\n%s", name, parent, hosts)
	if err := os.WriteFile(file, []byte(spec), 0o600); err != nil {
		t.Fatal(err)
	}
	monokube := func(bin string, args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=" + home, "LANG=C.UTF-8"}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	t.Cleanup(func() {
		if out, err := monokube(to, "cluster", "delete", name); err != nil {
			t.Errorf("cluster delete: %v\n%s", err, out)
		}
		if err := cgroups.RemoveRoot(cgroups.Detect(), parent); err != nil {
			t.Errorf("cgroups left: %v", err)
		}
	})
	began := time.Now()
	if out, err := monokube(from, "cluster", "apply", "-f", file); err != nil {
		t.Fatalf("cluster apply (from): %v\n%s", err, out)
	}
	t.Logf("3 servers + 2 workers Ready in %s", time.Since(began).Round(100*time.Millisecond))
	cluster, err := fleet.LoadLocal(name)
	if err != nil {
		t.Fatal(err)
	}
	admin := filepath.Join(fleet.LocalRoot, name, "admin.conf")
	client := kubeClient(t, admin)

	// The workload: busybox httpd, one replica on each worker.
	archive := filepath.Join(t.TempDir(), "busybox.tar")
	harness.WriteBusyboxArchiveAs(t, harness.BusyboxImage, archive)
	workers := []string{name + "-4", name + "-5"}
	for _, w := range workers {
		m, err := cluster.Machine(w)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := m.Run(context.Background(), "/usr/local/bin/monokube images import "+archive); err != nil {
			t.Fatalf("import on %s: %v\n%s", w, err, out)
		}
	}
	kubectl := func(stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command(harness.Kubectl, append([]string{"--kubeconfig", admin}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	kubectl(fmt.Sprintf(workload, harness.BusyboxImage), "apply", "-f", "-")
	harness.Poll(t, 3*time.Minute, "web available on both workers", func(ctx context.Context) (bool, error) {
		d, err := client.AppsV1().Deployments("default").Get(ctx, "web", metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == 2, nil
	})

	// The prober runs in the first worker's network namespace: the load
	// balancer listens on its loopback.
	stop := filepath.Join(home, "stop-probing")
	prober := exec.Command("ip", "netns", "exec", fmt.Sprintf("mkc%sn4", cluster.ID), os.Args[0], "-test.run", "^TestUpgradeProber$")
	var proberOut strings.Builder
	prober.Stdout, prober.Stderr = &proberOut, &proberOut
	prober.Env = append(os.Environ(), "MONOKUBE_PROBE_KUBECONFIG="+admin, "MONOKUBE_PROBE_STOP="+stop,
		"MONOKUBE_PROBE_URLS="+fmt.Sprintf("http://%s:8080/,http://%s:8080/", cluster.NodeIP(workers[0]), cluster.NodeIP(workers[1])))
	if err := prober.Start(); err != nil {
		t.Fatal(err)
	}
	watchCtx, stopWatching := context.WithCancel(context.Background())
	events := recordWebEvents(watchCtx, client)
	time.Sleep(3 * time.Second)
	began = time.Now()
	out, err := monokube(to, "cluster", "apply", "-f", file)
	stopWatching()
	upgradeTook := time.Since(began)
	time.Sleep(3 * time.Second)
	if werr := os.WriteFile(stop, nil, 0o600); werr != nil {
		t.Fatal(werr)
	}
	_ = prober.Wait()
	if err != nil {
		t.Fatalf("cluster apply (to): %v\n%s", err, out)
	}
	var result probeResult
	for _, line := range strings.Split(proberOut.String(), "\n") {
		if strings.HasPrefix(line, "{") {
			_ = json.Unmarshal([]byte(line), &result)
		}
	}
	t.Logf("rolling upgrade of 5 hosts in %s:\n%s", upgradeTook.Round(100*time.Millisecond), out)
	report, _ := json.Marshal(map[string]any{"upgrade_s": upgradeTook.Seconds(), "probes": result})
	fmt.Println(string(report))
	if strings.Count(out, "binary, upgraded ") != 5 {
		t.Errorf("want 5 hosts upgraded:\n%s", out)
	}
	t.Logf("failed probes, as the prober saw them:\n%s", lastLines(proberOut.String(), 400))
	if result.APIRequests == 0 || result.HTTPRequests == 0 {
		t.Errorf("the prober counted nothing: %+v\n%s", result, proberOut.String())
	}
	t.Logf("during the upgrade: API %d requests, %d failed; HTTP %d requests, %d failed", result.APIRequests, result.APIFailed, result.HTTPRequests, result.HTTPFailed)
	if result.HTTPFailed > 0 {
		t.Logf("the web Service's endpoints and the nodes' readiness during the upgrade:\n%s", events.String())
	}
	if result.APIFailed > 0 {
		// What the prober's balancer saw (servers failing, refusing, handoffs).
		balancerLog, _ := os.ReadFile(filepath.Join(cluster.Dir(), "nodes", workers[0], "root/var/lib/monokube/agent/api-balancer.log"))
		t.Logf("the first worker's API balancer log:\n%s", lastLines(string(balancerLog), 200))
	}

	// A budget that allows no disruption stops the next upgrade, named.
	kubectl("", "patch", "pdb", "web", "--type=merge", "-p", `{"spec":{"minAvailable":2}}`)
	out, err = monokube(from, "cluster", "apply", "-f", file, "--drain-timeout", "20s")
	if err == nil || !strings.Contains(out, "PodDisruptionBudget default/web") || !strings.Contains(out, "host "+name+"-4") {
		t.Fatalf("an upgrade blocked by a budget must stop naming the host and the budget: %v\n%s", err, out)
	}
	t.Logf("blocked as it should be:\n%s", lastLines(out, 3))
	kubectl("", "patch", "pdb", "web", "--type=merge", "-p", `{"spec":{"minAvailable":1}}`)
	if out, err := monokube(from, "cluster", "apply", "-f", file, "--drain-timeout", "2m"); err != nil {
		t.Fatalf("the rerun after relaxing the budget: %v\n%s", err, out)
	}
}

const workload = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: default}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      affinity:
        podAntiAffinity:
          requiredDuringSchedulingIgnoredDuringExecution:
            - {topologyKey: kubernetes.io/hostname, labelSelector: {matchLabels: {app: web}}}
      terminationGracePeriodSeconds: 5
      containers:
        - name: httpd
          image: %s
          imagePullPolicy: IfNotPresent
          command: [sh, -c, "mkdir -p /www && echo ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
          readinessProbe: {httpGet: {path: /, port: 8080}, periodSeconds: 1}
          lifecycle: {preStop: {exec: {command: [sleep, "3"]}}}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web, namespace: default}
spec:
  minAvailable: 1
  selector: {matchLabels: {app: web}}
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  type: LoadBalancer
  selector: {app: web}
  ports: [{port: 8080, targetPort: 8080}]
`

// TestUpgradeProber is the prober TestRollingUpgrade starts in a worker's
// network namespace: an API read (the default namespace, as the admin,
// with client-go's typed client as kubectl and controllers do) through the
// worker's load balancer and the web Service, each 10 times a second,
// until the stop file appears. Not /readyz: a server that has begun to
// shut down rightly answers it 500 while it still serves reads. client-go
// retries a GET whose connection a stopping server closed under it (Go's
// HTTP/2 server closes idle connections at shutdown, racing a request
// just sent); a raw HTTP client counted one such EOF per run or none.
func TestUpgradeProber(t *testing.T) {
	stop := os.Getenv("MONOKUBE_PROBE_STOP")
	if stop == "" {
		t.Skip("started by TestRollingUpgrade")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("MONOKUBE_PROBE_KUBECONFIG"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Host = "https://127.0.0.1:6444"
	cfg.TLSClientConfig.Insecure, cfg.TLSClientConfig.CAData, cfg.TLSClientConfig.CAFile = true, nil, ""
	cfg.Timeout = 2 * time.Second
	// 10 reads a second are the probe, not client-go's default 5 a second.
	cfg.QPS, cfg.Burst = 100, 200
	api, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	web := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	urls := strings.Split(os.Getenv("MONOKUBE_PROBE_URLS"), ",")
	var result probeResult
	var apiFailed, httpFailed atomic.Int64
	ok := func(client *http.Client, url string) bool {
		resp, err := client.Get(url)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s %s: %v\n", time.Now().Format("15:04:05.000"), url, err)
			return false
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fmt.Fprintf(os.Stderr, "%s %s: %s\n", time.Now().Format("15:04:05.000"), url, resp.Status)
		}
		return resp.StatusCode == http.StatusOK
	}
	// Counting starts once every URL answered: the LoadBalancer's
	// addresses are programmed on the nodes a moment after the
	// Deployment is available.
	deadline := time.Now().Add(time.Minute)
	for _, url := range urls {
		for !ok(web, url) && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	var inFlight sync.WaitGroup
	ticker := time.NewTicker(100 * time.Millisecond)
	defer ticker.Stop()
	for i := 0; ; i++ {
		if _, err := os.Stat(stop); err == nil {
			break
		}
		<-ticker.C
		result.APIRequests++
		result.HTTPRequests++
		inFlight.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			if _, err := api.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err != nil {
				fmt.Fprintf(os.Stderr, "%s API: %v\n", time.Now().Format("15:04:05.000"), err)
				apiFailed.Add(1)
			}
		})
		url := urls[i%len(urls)]
		inFlight.Go(func() {
			if !ok(web, url) {
				httpFailed.Add(1)
			}
		})
	}
	inFlight.Wait()
	result.APIFailed, result.HTTPFailed = int(apiFailed.Load()), int(httpFailed.Load())
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
}

// recordWebEvents logs, with times, every change of the web Service's
// EndpointSlices and of the nodes' Ready condition, to explain failed
// HTTP probes.
func recordWebEvents(ctx context.Context, client kubernetes.Interface) *syncLog {
	events := &syncLog{}
	go func() {
		w, err := client.DiscoveryV1().EndpointSlices("default").Watch(ctx, metav1.ListOptions{LabelSelector: "kubernetes.io/service-name=web"})
		if err != nil {
			events.add("endpointslices watch: %v", err)
			return
		}
		defer w.Stop()
		for e := range w.ResultChan() {
			slice, ok := e.Object.(*discoveryv1.EndpointSlice)
			if !ok {
				continue
			}
			var eps []string
			for _, ep := range slice.Endpoints {
				node := ""
				if ep.NodeName != nil {
					node = *ep.NodeName
				}
				eps = append(eps, fmt.Sprintf("%s@%s ready=%v serving=%v terminating=%v", strings.Join(ep.Addresses, ","), node,
					ep.Conditions.Ready != nil && *ep.Conditions.Ready, ep.Conditions.Serving != nil && *ep.Conditions.Serving,
					ep.Conditions.Terminating != nil && *ep.Conditions.Terminating))
			}
			events.add("endpoints %s: %s", e.Type, strings.Join(eps, "; "))
		}
	}()
	go func() {
		w, err := client.CoreV1().Services("default").Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=web"})
		if err != nil {
			events.add("services watch: %v", err)
			return
		}
		defer w.Stop()
		for e := range w.ResultChan() {
			if svc, ok := e.Object.(*corev1.Service); ok {
				var ips []string
				for _, in := range svc.Status.LoadBalancer.Ingress {
					ips = append(ips, in.IP)
				}
				events.add("service web %s: ingress %v", e.Type, ips)
			}
		}
	}()
	go func() {
		w, err := client.CoreV1().Nodes().Watch(ctx, metav1.ListOptions{})
		if err != nil {
			events.add("nodes watch: %v", err)
			return
		}
		defer w.Stop()
		last := map[string]string{}
		for e := range w.ResultChan() {
			node, ok := e.Object.(*corev1.Node)
			if !ok {
				continue
			}
			state := "unknown"
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady {
					state = string(c.Status) + " " + c.Reason
				}
			}
			if node.Spec.Unschedulable {
				state += " cordoned"
			}
			if last[node.Name] != state {
				last[node.Name] = state
				events.add("node %s: Ready=%s", node.Name, state)
			}
		}
	}()
	return events
}

// syncLog is a log several goroutines add timed lines to.
type syncLog struct {
	mu    sync.Mutex
	lines strings.Builder
}

func (l *syncLog) add(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(&l.lines, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, args...)...)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lines.String()
}

func kubeClient(t *testing.T, kubeconfig string) kubernetes.Interface {
	t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
