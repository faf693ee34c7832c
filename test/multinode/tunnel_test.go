package multinode

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestWorkerBehindNAT runs a server that is only a control plane and one
// worker whose only way to it is a NAT router: the server cannot reach the
// worker's address. Everything the API server does on the worker goes
// through the tunnel the worker opened: logs, exec, attach, port-forward,
// metrics (kubectl top, the metrics.k8s.io APIService) and an admission
// webhook served by a pod there. Then the same server with the tunnels
// disabled cannot reach the worker's kubelet, which shows the tunnel is
// what carried it all.
func TestWorkerBehindNAT(t *testing.T) {
	c := harness.NewCluster(t, "")
	c.Server.StartServer()
	c.Server.WaitReady(3 * time.Minute)
	worker := c.AddWorkerBehindNAT()
	harness.WriteWebhookArchive(t, filepath.Join(worker.DataDir, "images"))
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(worker)
	ready := time.Now()
	if out, err := c.Server.InNode("timeout", "3", "bash", "-c", "</dev/tcp/"+worker.IP+"/10250"); err == nil {
		t.Fatalf("the server reaches the worker's kubelet at %s directly; the test needs it not to: %s", worker.IP, out)
	}

	runBehindNAT(t, c)

	harness.Poll(t, time.Minute, "kubectl logs through the tunnel", func(context.Context) (bool, error) {
		out, err := c.Server.Kubectl("logs", "behind-nat")
		return err == nil && strings.Contains(out, "hello-from-behind-nat"), nil
	})
	if out := c.Server.MustKubectl("exec", "behind-nat", "--", "hostname"); strings.TrimSpace(out) != "behind-nat" {
		t.Errorf("kubectl exec hostname: %q", out)
	}
	if out := kubectlFor(t, c.Server, 5*time.Second, "attach", "behind-nat"); !strings.Contains(out, "tick") {
		t.Errorf("kubectl attach showed no tick: %q", out)
	}
	checkPortForward(t, c.Server, "pod/behind-nat", 8080, "served-behind-nat")

	// Metrics: metrics-server runs on the worker (the only node), the API
	// server reaches it through the worker's tunnel.
	harness.Poll(t, 3*time.Minute, "kubectl top nodes lists the worker", func(context.Context) (bool, error) {
		out, err := c.Server.Kubectl("top", "nodes")
		return err == nil && strings.Contains(out, worker.Name), nil
	})
	t.Logf("kubectl top nodes listed the worker %s after it was Ready (goal: within 90 s)", time.Since(ready).Round(time.Second))
	if out := c.Server.MustKubectl("get", "apiservice", "v1beta1.metrics.k8s.io", "-o", "jsonpath={.status.conditions[?(@.type=='Available')].status}"); out != "True" {
		t.Errorf("APIService v1beta1.metrics.k8s.io Available=%q", out)
	}

	checkWebhookBehindNAT(t, c)
	checkTunnelIdentity(t, c, worker)

	// Without the tunnels the API server dials the worker's address, which
	// it has no route to.
	c.Server.Kill()
	c.Server.StartServer("--egress-selector-mode", "disabled")
	c.Server.WaitReady(3 * time.Minute)
	if out, err := c.Server.Kubectl("logs", "behind-nat", "--request-timeout=20s"); err == nil {
		t.Errorf("with egressSelectorMode disabled, kubectl logs to the worker behind NAT worked: %s", out)
	} else {
		t.Logf("with egressSelectorMode disabled, kubectl logs fails as it should: %s", strings.TrimSpace(out))
	}
}

// runBehindNAT runs the pod behind-nat (on the only node, the worker
// behind NAT): it says hello, serves HTTP on 8080 and ticks every second.
func runBehindNAT(t *testing.T, c *harness.Cluster) {
	t.Helper()
	c.Server.Apply(`apiVersion: v1
kind: Pod
metadata: {name: behind-nat, namespace: default}
spec:
  containers:
  - name: main
    image: ` + harness.BusyboxImage + `
    command: [sh, -c, 'echo hello-from-behind-nat; mkdir -p /www; echo served-behind-nat > /www/index.html; httpd -p 8080 -h /www; while true; do echo tick; sleep 1; done']
`)
	harness.WaitPhase(t, c.Client(), "default", "behind-nat", corev1.PodRunning)
}

// kubectlFor runs kubectl for d, then stops it, and returns what it wrote
// (for commands that stream until stopped: attach, port-forward).
func kubectlFor(t *testing.T, s *harness.Node, d time.Duration, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, harness.Kubectl, append([]string{"--kubeconfig", s.AdminKubeconfig()}, args...)...)
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run()
	return out.String()
}

// checkPortForward fetches / from target's port through kubectl
// port-forward.
func checkPortForward(t *testing.T, s *harness.Node, target string, port int, want string) {
	t.Helper()
	resp, err := http.Get(s.PortForward(target, port) + "/")
	if err != nil {
		t.Fatalf("GET through port-forward to %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), want) {
		t.Errorf("port-forward to %s: got %q, want %q", target, body, want)
	}
}

// checkWebhookBehindNAT deploys the test webhook on the worker and checks
// the API server calls it: a labelled ConfigMap is refused with its message.
func checkWebhookBehindNAT(t *testing.T, c *harness.Cluster) {
	t.Helper()
	caPEM, certPEM, keyPEM := harness.ServingCertificates(t, "tunnel-webhook.default.svc")
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "tunnel-webhook-tls", Namespace: "default"},
		Type:       corev1.SecretTypeTLS,
		Data:       map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM},
	}
	if _, err := c.Client().CoreV1().Secrets("default").Create(context.Background(), secret, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	c.Server.Apply(`apiVersion: v1
kind: Pod
metadata: {name: tunnel-webhook, namespace: default, labels: {app: tunnel-webhook}}
spec:
  containers:
  - name: webhook
    image: ` + harness.WebhookImage + `
    ports: [{containerPort: 8443}]
    volumeMounts: [{name: tls, mountPath: /tls}]
  volumes: [{name: tls, secret: {secretName: tunnel-webhook-tls}}]
---
apiVersion: v1
kind: Service
metadata: {name: tunnel-webhook, namespace: default}
spec:
  selector: {app: tunnel-webhook}
  ports: [{port: 443, targetPort: 8443}]
`)
	harness.WaitPhase(t, c.Client(), "default", "tunnel-webhook", corev1.PodRunning)
	c.Server.Apply(fmt.Sprintf(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: tunnel-webhook}
webhooks:
- name: tunnel-webhook.monokube.io
  admissionReviewVersions: [v1]
  sideEffects: None
  failurePolicy: Fail
  timeoutSeconds: 10
  objectSelector: {matchLabels: {webhook-test: deny}}
  rules: [{apiGroups: [""], apiVersions: [v1], operations: [CREATE], resources: [configmaps]}]
  clientConfig:
    service: {name: tunnel-webhook, namespace: default, path: /validate}
    caBundle: %s
`, base64.StdEncoding.EncodeToString(caPEM)))
	var last string
	harness.Poll(t, time.Minute, "the webhook behind NAT refuses a labelled ConfigMap", func(context.Context) (bool, error) {
		name := fmt.Sprintf("denied-%d", time.Now().UnixNano())
		out, err := c.Server.Kubectl("create", "configmap", name)
		if err != nil {
			return false, fmt.Errorf("an unlabelled ConfigMap was refused: %s", out)
		}
		out, err = c.Server.KubectlStdin(fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: %s-labelled, labels: {webhook-test: deny}}\n", name), "create", "-f", "-")
		last = out
		return err != nil && strings.Contains(out, "denied by the test webhook in pod tunnel-webhook"), nil
	})
	t.Logf("the webhook behind NAT answered: %s", strings.TrimSpace(last))
}

// checkTunnelIdentity checks only a node's own credentials open a tunnel,
// and only for itself.
func checkTunnelIdentity(t *testing.T, c *harness.Cluster, worker *harness.Node) {
	t.Helper()
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(filepath.Join(c.Server.DataDir, "pki", "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(ca)
	nodeCert, err := tls.LoadX509KeyPair(filepath.Join(worker.DataDir, "kubelet", "pki", "kubelet-client-current.pem"), filepath.Join(worker.DataDir, "kubelet", "pki", "kubelet-client-current.pem"))
	if err != nil {
		t.Fatalf("the worker's node credentials: %v", err)
	}
	adminCert, err := tls.LoadX509KeyPair(filepath.Join(c.Server.DataDir, "pki", "admin.crt"), filepath.Join(c.Server.DataDir, "pki", "admin.key"))
	if err != nil {
		t.Fatalf("the admin credentials: %v", err)
	}
	for _, try := range []struct {
		what  string
		cert  tls.Certificate
		claim string
		want  string
	}{
		{"the worker's credentials claiming the server's node name", nodeCert, c.Server.Name, fmt.Sprintf("node %q may not open a tunnel for node %q", worker.Name, c.Server.Name)},
		{"the admin's credentials", adminCert, worker.Name, "only a node may open a tunnel"},
	} {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{try.cert}}}}
		req, _ := http.NewRequest(http.MethodGet, "https://"+net.JoinHostPort(c.Server.IP, "6443")+"/v1-monokube/connect", nil)
		req.Header.Set("X-Monokube-Node", try.claim)
		req.Header.Set("Connection", "Upgrade")
		req.Header.Set("Upgrade", "websocket")
		req.Header.Set("Sec-Websocket-Version", "13")
		req.Header.Set("Sec-Websocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("%s: %v", try.what, err)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(string(body), try.want) {
			t.Errorf("a tunnel opened with %s: %d %q, want 403 %q", try.what, resp.StatusCode, body, try.want)
		}
	}
}

// TestWorkerBehindNATWithThreeServers: the NAT'd worker keeps a tunnel to
// each of three servers (none a node), so kubectl logs works through each
// server's API; a server killed with kill -9 and started again has the
// worker's tunnel back within seconds.
func TestWorkerBehindNATWithThreeServers(t *testing.T) {
	c := harness.NewCluster(t, etcdSpec)
	servers := c.StartServers(3, etcdSpec)
	worker := c.AddWorkerBehindNAT()
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(worker)
	runBehindNAT(t, c)
	logsThrough := func(s *harness.Node, within time.Duration) time.Duration {
		t.Helper()
		began := time.Now()
		harness.Poll(t, within, "kubectl logs through "+s.Name, func(context.Context) (bool, error) {
			out, err := s.Kubectl("logs", "behind-nat", "--request-timeout=5s")
			return err == nil && strings.Contains(out, "hello-from-behind-nat"), nil
		})
		return time.Since(began)
	}
	for _, s := range servers {
		logsThrough(s, time.Minute)
	}

	servers[0].Kill()
	for _, s := range servers[1:] {
		t.Logf("kubectl logs through %s %s after %s was killed", s.Name, logsThrough(s, 15*time.Second).Round(10*time.Millisecond), servers[0].Name)
	}
	servers[0].StartServer()
	servers[0].WaitReady(3 * time.Minute)
	t.Logf("kubectl logs through the restarted %s %s after it was ready (the worker's tunnel reconnected; goal: within 10 s)",
		servers[0].Name, logsThrough(servers[0], 15*time.Second).Round(10*time.Millisecond))
}
