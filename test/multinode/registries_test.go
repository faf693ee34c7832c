package multinode

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestRegistries runs a real registry (TLS from a test CA, a password) on
// the test network and a server with two workers whose registry settings
// live on the server only (spec.registries, k3s's format), with the
// embedded mirror on. It checks, in order: a worker pulls a private image
// with the credentials and CA the server handed it; a Docker Hub name is
// rewritten to the registry's mirror/ repository; a worker's own
// registries.yaml, changed while it runs, overrides the cluster's (no
// credentials: the registry's 401 reaches the pod's events); with the
// registry stopped, an image only the server's node holds starts a pod on
// a worker, pulled from the server's mirror; a big image comes from a peer;
// and a peer's mirror refuses a client without a node certificate.
func TestRegistries(t *testing.T) {
	c := harness.NewCluster(t, "")
	registry := harness.StartRegistry(t, c.Network, harness.RegistryOptions{})
	spec := fmt.Sprintf(`registries:
    embeddedMirror: true
    mirrors:
      %[1]q: {}
      docker.io:
        endpoint: ["https://%[1]s"]
        rewrite:
          "^library/(.*)": "mirror/$1"
    configs:
      %[1]q:
        auth: {username: %[2]q, password: %[3]q}
        tls: {ca_file: %[4]q}
`, registry.Host, registry.Username, registry.Password, registry.CAFile)
	c.Server.WriteConfig("", "  "+spec)

	private := registry.Push(t, "private/sleep:1", harness.SleepImage(t))
	registry.Push(t, "mirror/rewritten:1", harness.SleepImage(t))
	refused := registry.Push(t, "private/refused:1", harness.SleepImage(t))
	big := registry.Push(t, "private/big:1", harness.BigImage(t, 100))
	// Only the server's node holds this one: it is never pushed.
	imported := registry.Reference("imported/sleep:1")
	writeImageArchive(t, imported, filepath.Join(c.Server.DataDir, "images", "imported.tar"))

	c.Server.StartReady()
	token := c.Token("--expiry=1h")
	first, second := c.AddWorker(), c.AddWorker()
	first.StartWorker(token)
	second.StartWorker(token)
	c.WaitReady(c.All()...)
	client := c.Client()

	t.Run("PrivateImageOnWorker", func(t *testing.T) {
		runPodOn(t, c, first, "private", private)
		if events := podEvents(t, c, "private"); !strings.Contains(events, "Successfully pulled") {
			t.Fatalf("the pod did not pull its image:\n%s", events)
		}
	})
	t.Run("RewriteToMirrorRepository", func(t *testing.T) {
		runPodOn(t, c, first, "rewritten", "docker.io/library/rewritten:1")
	})
	t.Run("BigImageFromRegistry", func(t *testing.T) {
		took := crictlPull(t, first, big)
		t.Logf("a 100 MiB image pulled from the registry in %s", took)
	})
	t.Run("WorkerFileOverridesCredentials", func(t *testing.T) {
		local := fmt.Sprintf("configs:\n  %q:\n    tls:\n      ca_file: %q\n", registry.Host, registry.CAFile)
		if err := os.WriteFile(filepath.Join(second.MachineDir("/etc/monokube"), "registries.yaml"), []byte(local), 0o644); err != nil {
			t.Fatal(err)
		}
		harness.Poll(t, time.Minute, "the worker applies its changed registries file", func(context.Context) (bool, error) {
			return strings.Contains(second.Log(), "Applied the changed registries file"), nil
		})
		createPodOn(t, c, second, "refused", refused)
		harness.Poll(t, 2*time.Minute, "the registry's 401 in the pod's events", func(context.Context) (bool, error) {
			return strings.Contains(podEvents(t, c, "refused"), "401 Unauthorized"), nil
		})
	})

	registry.Stop()
	t.Run("ImportedOnServerRunsOnWorker", func(t *testing.T) {
		runPodOn(t, c, first, "imported", imported)
		out, err := first.InNode(first.Bin, "crictl", "--data-dir", first.DataDir, "images")
		if err != nil || !strings.Contains(out, registry.Host+"/imported/sleep") {
			t.Fatalf("crictl images on the worker: %v\n%s", err, out)
		}
		if events := podEvents(t, c, "imported"); !strings.Contains(events, "Successfully pulled") {
			t.Fatalf("the image did not come by pull:\n%s", events)
		}
	})
	t.Run("BigImageFromPeer", func(t *testing.T) {
		// The second worker has no credentials and the registry is down:
		// only a peer can answer.
		before := rssMiB(t, first.PID())
		took := crictlPull(t, second, big)
		t.Logf("the same 100 MiB image pulled from a peer in %s; the serving worker's RSS %.0f MiB before, %.0f MiB after",
			took, before, rssMiB(t, first.PID()))
	})
	t.Run("MirrorRefusesNonNodes", func(t *testing.T) {
		insecure := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // the check is about the client's identity
		resp, err := insecure.Get("https://" + net.JoinHostPort(c.Server.IP, "5001") + "/v2/")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous GET /v2/ on a node's mirror: %s, want 401", resp.Status)
		}
	})
	if _, err := client.CoreV1().Secrets("kube-system").Get(context.Background(), "monokube-registries", metav1.GetOptions{}); err != nil {
		t.Fatalf("the registry settings Secret: %v", err)
	}
	configMaps, err := client.CoreV1().ConfigMaps("").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, cm := range configMaps.Items {
		if strings.Contains(fmt.Sprint(cm.Data), registry.Password) {
			t.Fatalf("the registry password is in ConfigMap %s/%s", cm.Namespace, cm.Name)
		}
	}
	for _, node := range c.All() {
		if strings.Contains(node.Log(), registry.Password) {
			t.Fatalf("%s logged the registry password", node.Name)
		}
	}
}

// writeImageArchive writes a fresh sleep image as reference into path.
func writeImageArchive(t *testing.T, reference, path string) {
	t.Helper()
	tag, err := name.NewTag(reference)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := tarball.WriteToFile(path, tag, harness.SleepImage(t)); err != nil {
		t.Fatal(err)
	}
}

// createPodOn creates a pod running image on node, pulled if not present.
func createPodOn(t *testing.T, c *harness.Cluster, node *harness.Node, name, image string) {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{
			NodeName:      node.Name,
			Containers:    []corev1.Container{{Name: "c", Image: image, ImagePullPolicy: corev1.PullIfNotPresent}},
			RestartPolicy: corev1.RestartPolicyNever,
		},
	}
	if _, err := c.Client().CoreV1().Pods("default").Create(context.Background(), pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// runPodOn creates the pod and waits for it to run.
func runPodOn(t *testing.T, c *harness.Cluster, node *harness.Node, name, image string) {
	t.Helper()
	createPodOn(t, c, node, name, image)
	defer func() {
		if t.Failed() {
			t.Logf("events of %s:\n%s", name, podEvents(t, c, name))
		}
	}()
	harness.WaitPhase(t, c.Client(), "default", name, corev1.PodRunning)
}

// podEvents are the pod's events, one message a line.
func podEvents(t *testing.T, c *harness.Cluster, pod string) string {
	t.Helper()
	events, err := c.Client().CoreV1().Events("default").List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + pod})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, e := range events.Items {
		lines = append(lines, e.Reason+": "+e.Message)
	}
	return strings.Join(lines, "\n")
}

// crictlPull pulls image on node through its CRI and returns how long it took.
func crictlPull(t *testing.T, node *harness.Node, image string) time.Duration {
	t.Helper()
	began := time.Now()
	out, err := node.InNode(node.Bin, "crictl", "--data-dir", node.DataDir, "pull", image)
	took := time.Since(began)
	if err != nil {
		t.Fatalf("crictl pull %s on %s: %v\n%s", image, node.Name, err, out)
	}
	return took.Round(10 * time.Millisecond)
}

// rssMiB is a process's resident memory.
func rssMiB(t *testing.T, pid int) float64 {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		if fields := strings.Fields(line); len(fields) >= 2 && fields[0] == "VmRSS:" {
			kib, _ := strconv.Atoi(fields[1])
			return float64(kib) / 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
