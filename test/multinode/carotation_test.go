package multinode

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/cert"

	"github.com/monokube/monokube/test/harness"
)

// TestCARotation replaces the CA of a server and a worker with a pod
// running on it: `certs rotate-ca`, then `--finish`, then
// `--drop-old-service-account-keys`. A kubeconfig the
// server prints afterwards works and the one printed before is refused;
// the worker stays Ready throughout and its pod's logs stream; the pod's
// service-account token (signed by the old key) still authenticates until
// the old keys are dropped; a join token made before the rotation is
// refused with "CA rotated".
func TestCARotation(t *testing.T) {
	c := harness.NewCluster(t, "")
	c.Server.StartReady()
	worker := c.AddWorker()
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(worker)
	c.Server.Apply(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"on-worker"},"spec":{"nodeName":"` + worker.Name + `",
"containers":[{"name":"c","image":"` + harness.BusyboxImage + `","imagePullPolicy":"IfNotPresent","command":["sh","-c","echo before; sleep 3600"]}]}}`)
	client := c.Client()
	harness.WaitPhase(t, client, "default", "on-worker", corev1.PodRunning)
	podToken := strings.TrimSpace(c.Server.MustKubectl("exec", "on-worker", "--", "cat", "/var/run/secrets/kubernetes.io/serviceaccount/token"))
	oldAdmin := readFile(t, c.Server.AdminKubeconfig())
	oldCA := readFile(t, filepath.Join(c.Server.DataDir, "pki", "ca.crt"))
	oldToken := c.Token("--expiry=1h")

	notReady := watchReady(t, c.Server, worker.Name)
	start := time.Now()
	for _, args := range [][]string{{"certs", "rotate-ca"}, {"certs", "rotate-ca", "--finish"}} {
		began := time.Now()
		out, err := c.Server.InNode(append([]string{c.Server.Bin}, append(args, "--data-dir", c.Server.DataDir)...)...)
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("%s (%s):\n%s", strings.Join(args, " "), time.Since(began).Round(100*time.Millisecond), out)
	}
	t.Logf("CA rotation on a server and a worker: %s", time.Since(start).Round(100*time.Millisecond))
	if down := notReady(); len(down) > 0 {
		t.Errorf("the worker was not Ready during the rotation: %v", down)
	}

	newCA := readFile(t, filepath.Join(c.Server.DataDir, "pki", "ca.crt"))
	if cas, err := cert.ParseCertsPEM(newCA); err != nil || len(cas) != 1 || string(newCA) == string(oldCA) {
		t.Fatalf("the server's ca.crt after --finish holds %d CAs (want 1, not the old): %v", len(cas), err)
	}
	if got := readFile(t, filepath.Join(worker.DataDir, "agent", "pki", "ca.crt")); string(got) != string(newCA) {
		t.Errorf("the worker trusts other CAs than the server's new one:\n%s", got)
	}
	// A kubeconfig printed now works; the one from before is refused.
	fresh, stderr, err := c.Server.Run("kubeconfig", "admin")
	if err != nil {
		t.Fatalf("kubeconfig admin: %v\n%s", err, stderr)
	}
	freshPath, oldPath := filepath.Join(t.TempDir(), "fresh.conf"), filepath.Join(t.TempDir(), "old.conf")
	writeFile(t, freshPath, fresh)
	writeFile(t, oldPath, string(oldAdmin))
	if out, err := harness.KubectlWith(freshPath, "get", "nodes"); err != nil {
		t.Errorf("kubectl with a kubeconfig printed after the rotation: %v\n%s", err, out)
	}
	if out, err := harness.KubectlWith(oldPath, "get", "nodes"); err == nil {
		t.Errorf("kubectl with the kubeconfig from before the rotation still works:\n%s", out)
	} else {
		t.Logf("old kubeconfig refused: %s", lastLines(out, 1))
	}
	// Not only does the old kubeconfig not trust the server: the server
	// no longer accepts its certificate.
	oldConfig, err := clientcmd.RESTConfigFromKubeConfig(oldAdmin)
	if err != nil {
		t.Fatal(err)
	}
	freshConfig, err := clientcmd.BuildConfigFromFlags("", freshPath)
	if err != nil {
		t.Fatal(err)
	}
	oldConfig.Host, oldConfig.CAData = freshConfig.Host, freshConfig.CAData
	_, err = kubernetes.NewForConfigOrDie(oldConfig).CoreV1().Nodes().List(context.Background(), metav1.ListOptions{})
	if !apierrors.IsUnauthorized(err) {
		t.Errorf("the old admin certificate, presented to the server after --finish: %v; want Unauthorized", err)
	}
	// The worker's kubelet serves logs under the new CA.
	harness.Poll(t, 2*time.Minute, "logs of the worker's pod", func(context.Context) (bool, error) {
		out, err := c.Server.Kubectl("logs", "on-worker")
		return err == nil && strings.TrimSpace(out) == "before", nil
	})
	// The pod's token, signed by the old service-account key, still
	// authenticates: that key verifies until its tokens expire.
	tokenClient := kubernetes.NewForConfigOrDie(&rest.Config{Host: freshConfig.Host, BearerToken: podToken,
		TLSClientConfig: rest.TLSClientConfig{CAData: freshConfig.CAData}})
	review, err := tokenClient.AuthenticationV1().SelfSubjectReviews().Create(context.Background(), &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil || review.Status.UserInfo.Username != "system:serviceaccount:default:default" {
		t.Errorf("the pod's token from before the rotation: %v %+v", err, review)
	}
	// Once the old keys are dropped, that token is refused.
	out, err := c.Server.InNode(c.Server.Bin, "certs", "rotate-ca", "--drop-old-service-account-keys", "--data-dir", c.Server.DataDir)
	if err != nil {
		t.Fatalf("--drop-old-service-account-keys: %v\n%s", err, out)
	}
	harness.Poll(t, time.Minute, "the old token refused", func(ctx context.Context) (bool, error) {
		_, err := tokenClient.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
		return apierrors.IsUnauthorized(err), nil
	})
	// A new pod runs on the worker (its kubelet talks to the API under
	// the new CA).
	c.Server.Apply(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"after"},"spec":{"nodeName":"` + worker.Name + `",
"containers":[{"name":"c","image":"` + harness.BusyboxImage + `","imagePullPolicy":"IfNotPresent","command":["sh","-c","sleep 3600"]}]}}`)
	harness.WaitPhase(t, c.Client(), "default", "after", corev1.PodRunning)
	// A join token made before the rotation pins the old CA.
	late := c.NewNode("")
	late.StartWorker(oldToken)
	code, err := late.WaitExit(90 * time.Second)
	if err != nil || code == 0 || !strings.Contains(late.Log(), "CA rotated") {
		t.Errorf("a worker joining with a token from before the rotation: exit %d, %v; want a refusal saying the CA rotated:\n%s", code, err, lastLines(late.Log(), 5))
	}
	status, stderr, err := c.Server.Run("certs", "status")
	if err != nil || !strings.Contains(status, "stage finished") {
		t.Errorf("certs status: %v\n%s%s", err, status, stderr)
	}
	t.Logf("certs status:\n%s", status)
}

// watchReady samples a node's Ready condition every second until the
// returned function is called, which lists the times it was not Ready.
func watchReady(t *testing.T, server *harness.Node, node string) func() []string {
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	var down []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			// The server restarts during the rotation: its client is made
			// again each time, and an unreachable server is no verdict.
			if client, err := server.ClientOrNil(); err == nil && client != nil {
				n, err := client.CoreV1().Nodes().Get(ctx, node, metav1.GetOptions{})
				if err == nil && !harness.NodeReady(n) {
					mu.Lock()
					down = append(down, time.Now().Format("15:04:05"))
					mu.Unlock()
				}
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	t.Cleanup(cancel)
	return func() []string {
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return down
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}

// rotateCAOnAll rotates the CA from one of three servers (one of them also
// a node) with a worker: the stages reach every server and node, the
// servers restart one at a time so one of them always answers, and the
// secrets-encryption keys, re-sealed under the new CA, still read.
func rotateCAOnAll(t *testing.T, servers []*harness.Node, worker *harness.Node) {
	t.Helper()
	oldCA := readFile(t, filepath.Join(servers[0].DataDir, "pki", "ca.crt"))
	ctx, cancel := context.WithCancel(context.Background())
	allDown := make(chan int, 1)
	go func() {
		down := 0
		for ctx.Err() == nil {
			answered := false
			for _, s := range servers {
				if client, err := s.ClientOrNil(); err == nil && client != nil {
					if _, err := client.CoreV1().Namespaces().Get(ctx, "default", metav1.GetOptions{}); err == nil {
						answered = true
						break
					}
				}
			}
			if !answered && ctx.Err() == nil {
				down++
			}
			time.Sleep(500 * time.Millisecond)
		}
		allDown <- down
	}()
	notReady := watchReady(t, servers[0], worker.Name)
	start := time.Now()
	for _, args := range [][]string{{"certs", "rotate-ca"}, {"certs", "rotate-ca", "--finish"}} {
		out, err := servers[1].InNode(append([]string{servers[1].Bin}, append(args, "--data-dir", servers[1].DataDir)...)...)
		if err != nil {
			cancel()
			t.Fatalf("%s on %s: %v\n%s", strings.Join(args, " "), servers[1].Name, err, out)
		}
		t.Logf("%s:\n%s", strings.Join(args, " "), out)
	}
	t.Logf("CA rotation on 3 servers (one a node) and a worker: %s", time.Since(start).Round(100*time.Millisecond))
	cancel()
	if down := <-allDown; down > 0 {
		t.Errorf("no server answered in %d samples (every 500 ms) during the rotation", down)
	}
	if down := notReady(); len(down) > 0 {
		t.Errorf("the worker was not Ready during the rotation: %v", down)
	}
	newCA := readFile(t, filepath.Join(servers[1].DataDir, "pki", "ca.crt"))
	for _, s := range servers {
		if got := readFile(t, filepath.Join(s.DataDir, "pki", "ca.crt")); string(got) != string(newCA) || string(got) == string(oldCA) {
			t.Errorf("%s trusts another CA than the new one", s.Name)
		}
		harness.Poll(t, time.Minute, "ha-secret through "+s.Name, func(context.Context) (bool, error) {
			out, err := s.Kubectl("get", "secret", "ha-secret", "-o", "jsonpath={.data.v}")
			return err == nil && out == "a2VwdA==", nil
		})
	}
	if got := readFile(t, filepath.Join(worker.DataDir, "agent", "pki", "ca.crt")); string(got) != string(newCA) {
		t.Errorf("the worker trusts other CAs than the new one")
	}
}
