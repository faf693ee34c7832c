// Package e2e runs a single node (`server --enable-worker`) in namespaces of
// its own and runs real containers on it, driven by the stock kubectl.
package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/monokube/monokube/test/harness"
)

const image = harness.BusyboxImage

// startNode brings up one node with the busybox image in its images dir;
// specExtra is YAML added under the config's spec.
func startNode(t *testing.T, specExtra string) *harness.Node {
	t.Helper()
	network := harness.NewNetwork(t)
	node := harness.NewNode(t, network, 1, specExtra)
	harness.WriteBusyboxArchive(t, filepath.Join(node.DataDir, "images"))
	// A static pod present before the very first start: the kubelet admits
	// it before its Node has any status, which is easy to break.
	boot := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"boot","namespace":"default"},"spec":{"containers":[{"name":"c","image":"` +
		image + `","imagePullPolicy":"IfNotPresent","command":["sleep","3600"]}]}}`
	if err := os.MkdirAll(filepath.Join(node.DataDir, "static-pods"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(node.DataDir, "static-pods", "boot.json"), []byte(boot), 0o644); err != nil {
		t.Fatal(err)
	}
	node.StartReady()
	node.WaitNodeReady(2 * time.Minute)
	return node
}

// TestNodeRunsPods shares one node between checks, the disruptive restart last.
func TestNodeRunsPods(t *testing.T) {
	node := startNode(t, "")
	client := node.Client()

	t.Run("StaticPodFromFirstStartRuns", func(t *testing.T) {
		harness.WaitPhase(t, client, "default", "boot-"+node.Name, corev1.PodRunning)
	})

	t.Run("EchoPodLogs", func(t *testing.T) {
		node.MustKubectl("run", "hello", "--image="+image, "--image-pull-policy=IfNotPresent", "--restart=Never", "--", "echo", "hi from monokube")
		harness.WaitPhase(t, client, "default", "hello", corev1.PodSucceeded)
		if out := node.MustKubectl("logs", "hello"); strings.TrimSpace(out) != "hi from monokube" {
			t.Fatalf("logs = %q", out)
		}
	})

	t.Run("ExecIntoRunningPod", func(t *testing.T) {
		node.MustKubectl("run", "sleeper", "--image="+image, "--image-pull-policy=IfNotPresent", "--restart=Never", "--", "sleep", "3600")
		harness.WaitPhase(t, client, "default", "sleeper", corev1.PodRunning)
		if out := node.MustKubectl("exec", "sleeper", "--", "echo", "exec works"); strings.TrimSpace(out) != "exec works" {
			t.Fatalf("exec output = %q", out)
		}
	})

	t.Run("EmbeddedCtrAndCrictlSeeTheNode", func(t *testing.T) {
		out, err := node.InNode(node.Bin, "--data-dir", node.DataDir, "crictl", "ps")
		if err != nil || !strings.Contains(out, "sleeper") {
			t.Errorf("crictl ps (err %v) lacks the sleeper container:\n%s", err, out)
		}
		out, err = node.InNode(node.Bin, "--data-dir", node.DataDir, "ctr", "images", "ls", "-q")
		if err != nil || !strings.Contains(out, image) || !strings.Contains(out, "monokube.io/pause:3.10") {
			t.Errorf("ctr images ls (err %v) lacks the busybox and pause images:\n%s", err, out)
		}
	})

	t.Run("ImagesImportIntoRunningNode", func(t *testing.T) {
		const imported = "docker.io/library/busybox:imported"
		archive := filepath.Join(t.TempDir(), "imported.tar")
		harness.WriteBusyboxArchiveAs(t, imported, archive)
		if out, err := node.InNode(node.Bin, "--data-dir", node.DataDir, "images", "import", archive); err != nil {
			t.Fatalf("images import: %v\n%s", err, out)
		}
		node.MustKubectl("run", "from-import", "--image="+imported, "--image-pull-policy=Never", "--restart=Never", "--", "echo", "imported ok")
		harness.WaitPhase(t, client, "default", "from-import", corev1.PodSucceeded)
	})

	t.Run("ImportedImagesArePinnedAgainstImageGC", func(t *testing.T) {
		// Nothing can pull them again: the kubelet's image GC must not
		// remove them under disk pressure (a churn soak on a full disk lost
		// its test image that way).
		out, err := node.InNode(node.Bin, "--data-dir", node.DataDir, "crictl", "images", "-o", "json")
		if err != nil {
			t.Fatalf("crictl images: %v\n%s", err, out)
		}
		var listed struct {
			Images []struct {
				RepoTags []string `json:"repoTags"`
				Pinned   bool     `json:"pinned"`
			} `json:"images"`
		}
		// The output may begin with crictl's warnings (stderr).
		if err := json.Unmarshal([]byte(out[max(strings.Index(out, "{"), 0):]), &listed); err != nil {
			t.Fatalf("crictl images output: %v\n%s", err, out)
		}
		pinned := map[string]bool{}
		for _, image := range listed.Images {
			for _, tag := range image.RepoTags {
				pinned[tag] = image.Pinned
			}
		}
		for _, tag := range []string{image, "docker.io/library/busybox:imported", "monokube.io/pause:3.10"} {
			if !pinned[tag] {
				t.Errorf("%s is not pinned (listed: %v)", tag, pinned)
			}
		}
	})

	t.Run("BundledImageWithPullAlwaysRunsWithoutARegistry", func(t *testing.T) {
		// The kubelet asks for a pull at each start with Always; the node's
		// image service answers it from the bundled import, as monokube.io
		// serves no registry (and none is reachable here).
		node.MustKubectl("run", "always-pause", "--image=monokube.io/pause:3.10", "--image-pull-policy=Always", "--restart=Never")
		harness.WaitPhase(t, client, "default", "always-pause", corev1.PodRunning)
	})

	t.Run("CrashingContainerRestartsWithBackoff", func(t *testing.T) {
		node.MustKubectl("run", "crasher", "--image="+image, "--image-pull-policy=IfNotPresent", "--", "sh", "-c", "exit 3")
		// Restarted, with a back-off between the restarts: either seen
		// waiting in CrashLoopBackOff, or a gap of seconds between the last
		// exit and the next start (1.37 often reports the exited state
		// until the restart).
		sawBackOff := false
		ok := harness.PollOK(2*time.Minute, func(ctx context.Context) (bool, error) {
			pod, err := client.CoreV1().Pods("default").Get(ctx, "crasher", metav1.GetOptions{})
			if err != nil || len(pod.Status.ContainerStatuses) == 0 {
				return false, nil
			}
			status := pod.Status.ContainerStatuses[0]
			if waiting := status.State.Waiting; waiting != nil && waiting.Reason == "CrashLoopBackOff" {
				sawBackOff = true
			}
			if last, current := status.LastTerminationState.Terminated, status.State.Terminated; last != nil && current != nil &&
				current.StartedAt.Sub(last.FinishedAt.Time) >= 5*time.Second {
				sawBackOff = true
			}
			return status.RestartCount >= 2 && sawBackOff, nil
		})
		if !ok {
			t.Fatalf("crasher not restarted with back-off (saw back-off: %v):\n%s", sawBackOff, node.MustKubectl("get", "pod", "crasher", "-o", "jsonpath={.status}"))
		}
	})

	t.Run("MemoryLimitReachesTheCgroup", func(t *testing.T) {
		node.Apply(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"limited"},"spec":{"containers":[{
"name":"c","image":"` + image + `","imagePullPolicy":"IfNotPresent","command":["sleep","3600"],
"resources":{"limits":{"memory":"64Mi","cpu":"200m"}}}]}}`)
		harness.WaitPhase(t, client, "default", "limited", corev1.PodRunning)
		// Inside the container its own cgroup is mounted at /sys/fs/cgroup.
		out := node.MustKubectl("exec", "limited", "--", "sh", "-c",
			"cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || cat /sys/fs/cgroup/memory.max")
		if strings.TrimSpace(out) != "67108864" {
			t.Fatalf("memory limit in the container's cgroup = %q, want 67108864", out)
		}
	})

	t.Run("ConfigMapSecretAndSharedEmptyDir", func(t *testing.T) {
		node.MustKubectl("create", "configmap", "settings", "--from-literal=color=blue")
		node.MustKubectl("create", "secret", "generic", "creds", "--from-literal=password=s3cret")
		node.Apply(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"volumes"},"spec":{
"volumes":[{"name":"cm","configMap":{"name":"settings"}},{"name":"sec","secret":{"secretName":"creds"}},{"name":"shared","emptyDir":{}}],
"containers":[
 {"name":"writer","image":"` + image + `","imagePullPolicy":"IfNotPresent","command":["sh","-c","echo from-writer > /shared/note; sleep 3600"],
  "volumeMounts":[{"name":"shared","mountPath":"/shared"}]},
 {"name":"reader","image":"` + image + `","imagePullPolicy":"IfNotPresent","command":["sleep","3600"],
  "env":[{"name":"COLOR","valueFrom":{"configMapKeyRef":{"name":"settings","key":"color"}}},
         {"name":"PASSWORD","valueFrom":{"secretKeyRef":{"name":"creds","key":"password"}}}],
  "volumeMounts":[{"name":"cm","mountPath":"/etc/settings"},{"name":"sec","mountPath":"/etc/creds"},{"name":"shared","mountPath":"/shared"}]}]}}`)
		harness.WaitPhase(t, client, "default", "volumes", corev1.PodRunning)
		checks := map[string]string{
			"cat /etc/settings/color": "blue",
			"cat /etc/creds/password": "s3cret",
			"echo $COLOR-$PASSWORD":   "blue-s3cret",
			"cat /shared/note":        "from-writer",
		}
		for command, want := range checks {
			var out string
			harness.Poll(t, 30*time.Second, command, func(context.Context) (bool, error) {
				out, _ = node.Kubectl("exec", "volumes", "-c", "reader", "--", "sh", "-c", command)
				return strings.TrimSpace(out) == want, nil
			})
		}
	})

	t.Run("PodAndServiceNetworking", func(t *testing.T) {
		node.MustKubectl("run", "web", "--image="+image, "--image-pull-policy=IfNotPresent", "--labels=app=web", "--port=8080", "--",
			"sh", "-c", "echo hello-web > /www/index.html && httpd -f -p 8080 -h /www")
		web := harness.WaitPhase(t, client, "default", "web", corev1.PodRunning)
		node.MustKubectl("expose", "pod", "web", "--name=web", "--port=80", "--target-port=8080")
		node.MustKubectl("create", "service", "nodeport", "web-np", "--tcp=80:8080")
		// `create service` selects app=web-np; point it at the web pod.
		node.MustKubectl("patch", "service", "web-np", "-p", `{"spec":{"selector":{"app":"web"}}}`)
		svc, err := client.CoreV1().Services("default").Get(context.Background(), "web", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		np, err := client.CoreV1().Services("default").Get(context.Background(), "web-np", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nodePort := np.Spec.Ports[0].NodePort

		fromPod := func(address string) string {
			out, _ := node.Kubectl("exec", "sleeper", "--", "sh", "-c", `printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 `+address)
			return out
		}
		fromNode := func(host string, port int32) string { return node.HTTPFrom(host, port) }
		cases := []struct {
			what string
			get  func() string
		}{
			{"pod IP from another pod", func() string { return fromPod(web.Status.PodIP + " 8080") }},
			{"ClusterIP from another pod", func() string { return fromPod(svc.Spec.ClusterIP + " 80") }},
			{"ClusterIP from the node", func() string { return fromNode(svc.Spec.ClusterIP, 80) }},
			{"NodePort from the node", func() string { return fromNode(node.IP, nodePort) }},
		}
		for _, c := range cases {
			var out string
			harness.Poll(t, 30*time.Second, c.what, func(context.Context) (bool, error) {
				out = c.get()
				return strings.Contains(out, "hello-web"), nil
			})
		}
	})

	t.Run("StaticPodAppearsAsMirrorPod", func(t *testing.T) {
		manifest := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"static-web","namespace":"default"},
"spec":{"containers":[{"name":"c","image":"` + image + `","imagePullPolicy":"IfNotPresent","command":["sleep","3600"]}]}}`
		path := filepath.Join(node.DataDir, "static-pods", "static-web.json")
		if err := os.WriteFile(path, []byte(manifest), 0o644); err != nil {
			t.Fatal(err)
		}
		mirror := harness.WaitPhase(t, client, "default", "static-web-"+node.Name, corev1.PodRunning)
		if _, ok := mirror.Annotations["kubernetes.io/config.mirror"]; !ok {
			t.Fatalf("pod static-web-%s is not a mirror pod: %v", node.Name, mirror.Annotations)
		}
	})

	t.Run("KubeletRefusesAnonymousRequests", func(t *testing.T) {
		ca, err := os.ReadFile(filepath.Join(node.DataDir, "pki", "ca.crt"))
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(ca)
		// The kubelet's serving certificate is signed by the cluster CA, so
		// this client verifies it; it sends no credentials.
		httpClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		resp, err := httpClient.Get("https://" + node.IP + ":10250/pods")
		if err != nil {
			t.Fatalf("kubelet API: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("anonymous GET /pods on the kubelet = %d, want 401", resp.StatusCode)
		}
	})

	t.Run("EditingKubeProxyConfigLeavesTheNodeRunning", func(t *testing.T) {
		// kube-proxy ends when the file it reads changes; it reads a copy
		// (fatal-exits.md P4).
		path := filepath.Join(node.DataDir, "agent", "kube-proxy.yaml")
		file, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = file.WriteString("# edited by an operator\n")
		if closeErr := file.Close(); err != nil || closeErr != nil {
			t.Fatalf("edit %s: %v %v", path, err, closeErr)
		}
		time.Sleep(3 * time.Second)
		if err := syscall.Kill(node.PID(), 0); err != nil {
			t.Fatalf("the node stopped after kube-proxy.yaml was edited:\n%s", harness.GrepLines(node.Log(), "kube-proxy"))
		}
		node.MustKubectl("get", "nodes")
	})

	t.Run("KillNineKeepsContainers", func(t *testing.T) {
		before := containerIDs(t, client)
		// The crasher (CrashingContainerRestartsWithBackoff) is the witness
		// that the new kubelet has synced the pods and reported their status;
		// every other running pod is checked.
		if _, ok := before["crasher"]; !ok || len(before) < 2 {
			t.Fatalf("want the crasher and at least one other running pod before the kill, have %v", before)
		}
		crasherRestarts := restartCount(t, client, "crasher")
		importsBefore := strings.Count(node.Log(), `"Imported image"`)
		node.Kill()
		node.StartReady()
		node.WaitNodeReady(2 * time.Minute)
		// The old kubelet's crash-loop back-off died with it: the new one
		// restarts the crasher in its first sync of the pods, the round that
		// would (wrongly) recreate the others' containers, and reports it.
		began := time.Now()
		harness.Poll(t, 3*time.Minute, "the restarted kubelet restarting the crasher", func(ctx context.Context) (bool, error) {
			pod, err := client.CoreV1().Pods("default").Get(ctx, "crasher", metav1.GetOptions{})
			return err == nil && len(pod.Status.ContainerStatuses) > 0 && pod.Status.ContainerStatuses[0].RestartCount > crasherRestarts, nil
		})
		t.Logf("the new kubelet restarted the crasher %s after the node was Ready", time.Since(began).Round(time.Millisecond))
		// The restart imported no image again, bundled or from the images
		// dir: the first start recorded them.
		harness.Poll(t, time.Minute, "the restart's image import", func(context.Context) (bool, error) {
			return strings.Count(node.Log(), `"Image archives imported"`) >= 2, nil
		})
		if after := strings.Count(node.Log(), `"Imported image"`); after != importsBefore || importsBefore == 0 {
			t.Errorf("%d images imported before the kill, %d after the restart: want no new import", importsBefore, after)
		}
		after := containerIDs(t, client)
		for name, id := range before {
			if name == "crasher" {
				continue // it restarts by design
			}
			if after[name] != id {
				t.Errorf("container of %s changed across kill -9: %s -> %s", name, id, after[name])
			}
		}
	})
}

// restartCount is the restart count of the first container of pod name.
func restartCount(t *testing.T, client kubernetes.Interface, name string) int32 {
	t.Helper()
	pod, err := client.CoreV1().Pods("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil || len(pod.Status.ContainerStatuses) == 0 {
		t.Fatalf("pod %s has no container status (err %v)", name, err)
	}
	return pod.Status.ContainerStatuses[0].RestartCount
}

// containerIDs maps running pods to "containerID/restartCount" of their first container.
func containerIDs(t *testing.T, client kubernetes.Interface) map[string]string {
	t.Helper()
	pods, err := client.CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, pod := range pods.Items {
		if pod.Status.Phase == corev1.PodRunning && len(pod.Status.ContainerStatuses) > 0 {
			status := pod.Status.ContainerStatuses[0]
			ids[pod.Name] = fmt.Sprintf("%s/%d", status.ContainerID, status.RestartCount)
		}
	}
	return ids
}
