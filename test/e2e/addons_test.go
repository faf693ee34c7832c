package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestAddons checks what a fresh node brings without any registry: cluster
// DNS and the manifests directory. Restarts with add-ons turned off come last.
func TestAddons(t *testing.T) {
	node := startNode(t, "")
	client := node.Client()
	ready := time.Now()

	t.Run("CoreDNSReadyBehindClusterDNSAddress", func(t *testing.T) {
		harness.Poll(t, 90*time.Second, "coredns Deployment available", func(ctx context.Context) (bool, error) {
			d, err := client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			return err == nil && d.Status.AvailableReplicas >= 1, nil
		})
		t.Logf("coredns available %s after Node Ready", time.Since(ready).Round(time.Second))
		svc, err := client.CoreV1().Services("kube-system").Get(context.Background(), "kube-dns", metav1.GetOptions{})
		if err != nil || svc.Spec.ClusterIP != "10.43.0.10" {
			t.Fatalf("kube-dns Service: %v, clusterIP %q", err, svc.Spec.ClusterIP)
		}
	})

	t.Run("KubectlTopNodesAndPods", func(t *testing.T) {
		var out string
		if !harness.PollOK(90*time.Second-time.Since(ready), func(context.Context) (bool, error) {
			out, _ = node.Kubectl("top", "nodes")
			return strings.Contains(out, node.Name), nil
		}) {
			t.Fatalf("kubectl top nodes does not list %s within 90 s of Node Ready:\n%s", node.Name, out)
		}
		t.Logf("kubectl top nodes answered %s after Node Ready", time.Since(ready).Round(time.Second))
		harness.Poll(t, 60*time.Second, "kubectl top pods lists coredns", func(context.Context) (bool, error) {
			out, _ = node.Kubectl("top", "pods", "-n", "kube-system")
			return strings.Contains(out, "coredns-"), nil
		})
	})

	// A client pod, a Service with a named port and a headless one over
	// a web server.
	node.Apply(fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: dnsclient}
spec:
  containers:
  - {name: c, image: %[1]s, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: dnsweb, labels: {app: dnsweb}}
spec:
  hostname: dnsweb
  subdomain: dnsweb-headless
  containers:
  - name: c
    image: %[1]s
    imagePullPolicy: IfNotPresent
    command: [httpd, -f, -p, "8080", -h, /www]
    ports: [{name: http, containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: dnsweb}
spec:
  selector: {app: dnsweb}
  ports: [{name: http, port: 80, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata: {name: dnsweb-headless}
spec:
  clusterIP: None
  selector: {app: dnsweb}
  ports: [{name: http, port: 8080}]
`, image))
	harness.WaitPhase(t, client, "default", "dnsclient", corev1.PodRunning)
	web := harness.WaitPhase(t, client, "default", "dnsweb", corev1.PodRunning)
	lookup := func(t *testing.T, name, want string) {
		t.Helper()
		var out string
		if !harness.PollOK(60*time.Second, func(context.Context) (bool, error) {
			out, _ = node.Kubectl("exec", "dnsclient", "--", "nslookup", name)
			return strings.Contains(afterServer(out), want), nil
		}) {
			t.Fatalf("nslookup %s does not answer %s:\n%s", name, want, out)
		}
	}

	t.Run("ServiceNamesResolve", func(t *testing.T) {
		svc, err := client.CoreV1().Services("default").Get(context.Background(), "dnsweb", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		lookup(t, "kubernetes.default.svc.cluster.local", "10.43.0.1")
		lookup(t, "dnsweb.default.svc.cluster.local", svc.Spec.ClusterIP)
		// The search path of the pod's resolv.conf. (busybox's nslookup
		// searches only names without a dot, so not "kubernetes.default";
		// glibc's resolver and dnsutils' nslookup do.)
		lookup(t, "dnsweb", svc.Spec.ClusterIP)
		lookup(t, "kubernetes", "10.43.0.1")
		// An ExternalName Service is a CNAME, followed within the cluster.
		node.Apply("apiVersion: v1\nkind: Service\nmetadata: {name: dnsalias}\nspec:\n  type: ExternalName\n  externalName: dnsweb.default.svc.cluster.local\n")
		lookup(t, "dnsalias.default.svc.cluster.local", svc.Spec.ClusterIP)
	})

	t.Run("HeadlessServiceAndPodRecords", func(t *testing.T) {
		lookup(t, "dnsweb-headless.default.svc.cluster.local", web.Status.PodIP)
		lookup(t, "dnsweb.dnsweb-headless.default.svc.cluster.local", web.Status.PodIP)
		lookup(t, strings.ReplaceAll(web.Status.PodIP, ".", "-")+".default.pod.cluster.local", web.Status.PodIP)
		out, _ := node.Kubectl("exec", "dnsclient", "--", "nslookup", "-type=SRV", "_http._tcp.dnsweb.default.svc.cluster.local")
		if !strings.Contains(out, "80") || !strings.Contains(out, "dnsweb.default.svc.cluster.local") {
			t.Errorf("SRV record for the named port:\n%s", out)
		}
	})

	t.Run("NodeNamesResolve", func(t *testing.T) {
		// busybox's nslookup would try only the search path for a name
		// without a dot; the trailing one makes it absolute.
		lookup(t, node.Name+".", node.IP)
	})

	t.Run("NetworkPolicyDeniesThenAllows", func(t *testing.T) {
		reach := func() bool {
			out, _ := node.Kubectl("exec", "dnsclient", "--", "sh", "-c",
				fmt.Sprintf(`printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 %s 8080`, web.Status.PodIP))
			return strings.Contains(out, "HTTP/1")
		}
		harness.Poll(t, 30*time.Second, "dnsclient reaches dnsweb before any policy", func(context.Context) (bool, error) { return reach(), nil })
		node.Apply(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: default}
spec:
  podSelector: {}
  policyTypes: [Ingress]
`)
		defer node.MustKubectl("delete", "networkpolicy", "default-deny", "allow-web", "--ignore-not-found")
		harness.PollSteady(t, 45*time.Second, 3, "default-deny blocks dnsclient → dnsweb", func() bool { return !reach() })
		if rules, err := node.InNode("iptables-save", "-t", "filter"); err != nil || !strings.Contains(rules, "KUBE-NWPLCY-") {
			t.Errorf("the node has no NetworkPolicy chains (err %v)", err)
		}
		node.Apply(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-web, namespace: default}
spec:
  podSelector: {matchLabels: {app: dnsweb}}
  ingress:
  - from: [{podSelector: {}}]
    ports: [{port: 8080, protocol: TCP}]
`)
		harness.Poll(t, 30*time.Second, "the allowing policy lets dnsclient through", func(context.Context) (bool, error) { return reach(), nil })

		// Egress: the client may send nothing.
		node.MustKubectl("label", "pod", "dnsclient", "role=client")
		node.Apply(`
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: client-no-egress, namespace: default}
spec:
  podSelector: {matchLabels: {role: client}}
  policyTypes: [Egress]
`)
		harness.PollSteady(t, 45*time.Second, 3, "the egress policy blocks dnsclient", func() bool { return !reach() })
		node.MustKubectl("delete", "networkpolicy", "client-no-egress")
		harness.Poll(t, 30*time.Second, "dnsclient sends again without the egress policy", func(context.Context) (bool, error) { return reach(), nil })
	})

	t.Run("CorefileEditTakesEffectWithoutRestart", func(t *testing.T) {
		cm, err := client.CoreV1().ConfigMaps("kube-system").Get(context.Background(), "coredns", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cm.Data["Corefile"] = strings.Replace(cm.Data["Corefile"], "    ready\n",
			"    ready\n    template IN A edited.test {\n        answer \"{{ .Name }} 60 IN A 192.0.2.77\"\n    }\n", 1)
		if _, err := client.CoreV1().ConfigMaps("kube-system").Update(context.Background(), cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		// The kubelet refreshes the mounted file within its sync period.
		var out string
		harness.Poll(t, 3*time.Minute, "the edited Corefile answers", func(context.Context) (bool, error) {
			out, _ = node.Kubectl("exec", "dnsclient", "--", "nslookup", "edited.test")
			return strings.Contains(afterServer(out), "192.0.2.77"), nil
		})
	})

	t.Run("ManifestsDirectoryAppliesAndPrunes", func(t *testing.T) {
		dir := filepath.Join(node.DataDir, "manifests", "e2e-stack")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		write := func(name, text string) {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		write("a.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: stacked\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: one\n  namespace: stacked\ndata: {k: v}\n")
		write("b.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: two\n  namespace: stacked\n")
		began := time.Now()
		harness.Poll(t, 10*time.Second, "the stack's objects exist", func(ctx context.Context) (bool, error) {
			_, err1 := client.CoreV1().ConfigMaps("stacked").Get(ctx, "one", metav1.GetOptions{})
			_, err2 := client.CoreV1().ConfigMaps("stacked").Get(ctx, "two", metav1.GetOptions{})
			return err1 == nil && err2 == nil, nil
		})
		t.Logf("applied %s after the files were written", time.Since(began).Round(100*time.Millisecond))

		// A file of the stack goes: what only it created goes too.
		os.Remove(filepath.Join(dir, "b.yaml"))
		harness.Poll(t, 10*time.Second, "ConfigMap two pruned", func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().ConfigMaps("stacked").Get(ctx, "two", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})

		// A broken file is reported with its line; other stacks still apply.
		broken := filepath.Join(node.DataDir, "manifests", "broken.yaml")
		if err := os.WriteFile(broken, []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n   bad: [\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		harness.Poll(t, 10*time.Second, "an ApplyFailed Event naming the file and line", func(ctx context.Context) (bool, error) {
			events, err := client.CoreV1().Events("kube-system").List(ctx, metav1.ListOptions{FieldSelector: "reason=ApplyFailed"})
			if err != nil {
				return false, nil
			}
			for _, e := range events.Items {
				if strings.Contains(e.Message, "broken.yaml:5") {
					return true, nil
				}
			}
			return false, nil
		})
		write("c.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: three\n  namespace: stacked\n")
		harness.Poll(t, 10*time.Second, "ConfigMap three despite the broken file", func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().ConfigMaps("stacked").Get(ctx, "three", metav1.GetOptions{})
			return err == nil, nil
		})
		os.Remove(broken)

		// The whole stack goes: its namespace and everything in it.
		if err := os.RemoveAll(dir); err != nil {
			t.Fatal(err)
		}
		harness.Poll(t, 10*time.Second, "namespace stacked deleted", func(ctx context.Context) (bool, error) {
			ns, err := client.CoreV1().Namespaces().Get(ctx, "stacked", metav1.GetOptions{})
			return apierrors.IsNotFound(err) || (err == nil && ns.DeletionTimestamp != nil), nil
		})
	})

	t.Run("LoadBalancerServiceAnswersOnNodeIP", func(t *testing.T) {
		node.Apply(fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: lbweb, labels: {app: lbweb}}
spec:
  containers:
  - name: c
    image: %[1]s
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo lb-ok > /www/index.html && exec httpd -f -p 8080 -h /www"]
---
apiVersion: v1
kind: Service
metadata: {name: lbweb}
spec:
  type: LoadBalancer
  selector: {app: lbweb}
  ports: [{name: http, port: 8081, targetPort: 8080}]
`, image))
		harness.WaitPhase(t, client, "default", "lbweb", corev1.PodRunning)
		ingress := func(ctx context.Context, name string) string {
			svc, err := client.CoreV1().Services("default").Get(ctx, name, metav1.GetOptions{})
			if err != nil || len(svc.Status.LoadBalancer.Ingress) == 0 {
				return ""
			}
			return svc.Status.LoadBalancer.Ingress[0].IP
		}
		harness.Poll(t, 30*time.Second, "lbweb gets the node's IP as its ingress", func(ctx context.Context) (bool, error) {
			return ingress(ctx, "lbweb") == node.IP, nil
		})
		// From the machine, over the test network: traffic the node routes
		// in, as a client elsewhere on its network would send it.
		var body string
		harness.Poll(t, 30*time.Second, "http://<node IP>:8081 answers", func(ctx context.Context) (bool, error) {
			body = httpGet(ctx, fmt.Sprintf("http://%s:8081/", node.IP))
			return strings.Contains(body, "lb-ok"), nil
		})

		// The same port again: pending, with an Event saying why.
		node.Apply(`
apiVersion: v1
kind: Service
metadata: {name: lbweb2}
spec:
  type: LoadBalancer
  selector: {app: lbweb}
  ports: [{port: 8081, targetPort: 8080}]
`)
		harness.Poll(t, 30*time.Second, "a PortConflict Event for lbweb2", func(ctx context.Context) (bool, error) {
			events, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=lbweb2,reason=PortConflict"})
			return err == nil && len(events.Items) > 0 && strings.Contains(events.Items[0].Message, "default/lbweb"), nil
		})
		if ip := ingress(context.Background(), "lbweb2"); ip != "" {
			t.Fatalf("lbweb2 got ingress %s despite the conflict", ip)
		}
		// The port is freed: the pending Service gets it.
		node.MustKubectl("delete", "service", "lbweb")
		harness.Poll(t, 30*time.Second, "lbweb2 gets the port once lbweb is gone", func(ctx context.Context) (bool, error) {
			return ingress(ctx, "lbweb2") == node.IP, nil
		})
	})

	t.Run("PVCBindsOnFirstUseAndKeepsDataAcrossPods", func(t *testing.T) {
		pod := fmt.Sprintf(`
apiVersion: v1
kind: Pod
metadata: {name: writer}
spec:
  securityContext: {runAsUser: 1000}
  containers:
  - name: c
    image: %s
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "test -f /data/note || echo kept > /data/note; exec sleep 3600"]
    volumeMounts: [{name: data, mountPath: /data}]
  volumes:
  - name: data
    persistentVolumeClaim: {claimName: data}
`, image)
		node.Apply(`
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: data}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 64Mi}}
`)
		// WaitForFirstConsumer: the PV controller says it waits, and
		// nothing is bound before a pod uses the claim.
		harness.Poll(t, 30*time.Second, "the claim waits for its first consumer", func(ctx context.Context) (bool, error) {
			events, err := client.CoreV1().Events("default").List(ctx, metav1.ListOptions{FieldSelector: "involvedObject.name=data,reason=WaitForFirstConsumer"})
			return err == nil && len(events.Items) > 0, nil
		})
		if pvc, err := client.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), "data", metav1.GetOptions{}); err != nil || pvc.Status.Phase != corev1.ClaimPending {
			t.Fatalf("PVC before any pod: %v, phase %s", err, pvc.Status.Phase)
		}
		node.Apply(pod)
		harness.WaitPhase(t, client, "default", "writer", corev1.PodRunning)
		pvc, err := client.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), "data", metav1.GetOptions{})
		if err != nil || pvc.Status.Phase != corev1.ClaimBound || pvc.Spec.StorageClassName == nil || *pvc.Spec.StorageClassName != "local-path" {
			t.Fatalf("PVC with a pod: %v, %+v", err, pvc.Status)
		}
		dir := filepath.Join(node.DataDir, "storage", pvc.Spec.VolumeName+"_default_data")
		if raw, err := os.ReadFile(filepath.Join(dir, "note")); err != nil || string(raw) != "kept\n" {
			t.Fatalf("the file a non-root pod wrote is not in %s: %v %q", dir, err, raw)
		}
		node.MustKubectl("delete", "pod", "writer", "--grace-period=1")
		node.Apply(pod)
		harness.WaitPhase(t, client, "default", "writer", corev1.PodRunning)
		if out := node.MustKubectl("exec", "writer", "--", "cat", "/data/note"); strings.TrimSpace(out) != "kept" {
			t.Fatalf("after the pod was recreated the volume holds %q", out)
		}
		// Deleting the claim removes the volume and its directory.
		node.MustKubectl("delete", "pod", "writer", "--grace-period=1")
		node.MustKubectl("delete", "pvc", "data")
		harness.Poll(t, 60*time.Second, "PV and directory removed", func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
			_, statErr := os.Stat(dir)
			return apierrors.IsNotFound(err) && os.IsNotExist(statErr), nil
		})
	})

	t.Run("HPAScalesACPUBurnerUp", func(t *testing.T) {
		node.Apply(fmt.Sprintf(`
apiVersion: apps/v1
kind: Deployment
metadata: {name: burner}
spec:
  replicas: 1
  selector: {matchLabels: {app: burner}}
  template:
    metadata: {labels: {app: burner}}
    spec:
      containers:
      - name: c
        image: %s
        imagePullPolicy: IfNotPresent
        command: [sh, -c, "while :; do :; done"]
        resources:
          requests: {cpu: 10m}
          limits: {cpu: 100m}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: burner}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: burner}
  minReplicas: 1
  maxReplicas: 2
  metrics:
  - type: Resource
    resource: {name: cpu, target: {type: Utilization, averageUtilization: 50}}
`, image))
		defer node.MustKubectl("delete", "deployment,hpa", "burner")
		began := time.Now()
		harness.Poll(t, 3*time.Minute, "the HPA scales burner to 2 replicas", func(ctx context.Context) (bool, error) {
			d, err := client.AppsV1().Deployments("default").Get(ctx, "burner", metav1.GetOptions{})
			return err == nil && d.Status.Replicas == 2, nil
		})
		t.Logf("scaled up %s after the HPA was created", time.Since(began).Round(time.Second))
	})

	t.Run("HelmChartInstallsUpgradesAndUninstalls", func(t *testing.T) {
		chart := chartArchive(t, map[string]string{
			"greeter/Chart.yaml":               "apiVersion: v2\nname: greeter\nversion: 0.1.0\n",
			"greeter/values.yaml":              "greeting: hello\n",
			"greeter/templates/configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-greeting\ndata:\n  greeting: {{ .Values.greeting | quote }}\n",
		})
		helmChart := func(greeting string) string {
			return fmt.Sprintf(`
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata: {name: greeter, namespace: kube-system}
spec:
  targetNamespace: greeted
  createNamespace: true
  chartContent: %s
  valuesContent: |
    greeting: %s
`, chart, greeting)
		}
		greeting := func(ctx context.Context) string {
			cm, err := client.CoreV1().ConfigMaps("greeted").Get(ctx, "greeter-greeting", metav1.GetOptions{})
			if err != nil {
				return ""
			}
			return cm.Data["greeting"]
		}
		node.Apply(helmChart("bonjour"))
		harness.Poll(t, 90*time.Second, "the chart's ConfigMap with the HelmChart's value", func(ctx context.Context) (bool, error) {
			return greeting(ctx) == "bonjour", nil
		})
		node.Apply(helmChart("hallo"))
		harness.Poll(t, 60*time.Second, "the release upgraded with the new value", func(ctx context.Context) (bool, error) {
			return greeting(ctx) == "hallo", nil
		})
		node.Apply(`
apiVersion: helm.cattle.io/v1
kind: HelmChartConfig
metadata: {name: greeter, namespace: kube-system}
spec:
  valuesContent: |
    greeting: ciao
`)
		harness.Poll(t, 60*time.Second, "HelmChartConfig's value over the HelmChart's", func(ctx context.Context) (bool, error) {
			return greeting(ctx) == "ciao", nil
		})
		if out := node.MustKubectl("get", "helmchart", "-n", "kube-system", "greeter", "-o", "jsonpath={.status.revision}"); out != "3" {
			t.Errorf("status.revision = %q, want 3", out)
		}
		node.MustKubectl("delete", "helmchart", "-n", "kube-system", "greeter")
		harness.Poll(t, 60*time.Second, "the release uninstalled with the HelmChart", func(ctx context.Context) (bool, error) {
			_, err := client.CoreV1().ConfigMaps("greeted").Get(ctx, "greeter-greeting", metav1.GetOptions{})
			return apierrors.IsNotFound(err), nil
		})
		node.MustKubectl("delete", "helmchartconfig", "-n", "kube-system", "greeter")
	})

	t.Run("DisabledAddonGoneAfterRestart", func(t *testing.T) {
		restartWithout(t, node, "coredns")
		harness.Poll(t, 30*time.Second, "coredns Deployment and kube-dns Service removed", func(ctx context.Context) (bool, error) {
			_, err1 := client.AppsV1().Deployments("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			_, err2 := client.CoreV1().Services("kube-system").Get(ctx, "kube-dns", metav1.GetOptions{})
			return apierrors.IsNotFound(err1) && apierrors.IsNotFound(err2), nil
		})
		if _, err := os.Stat(filepath.Join(node.DataDir, "manifests", "coredns.yaml")); !os.IsNotExist(err) {
			t.Errorf("coredns.yaml still in the manifests directory: %v", err)
		}
	})
}

// httpGet returns the body at url, or "" on any error.
func httpGet(ctx context.Context, url string) string {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return ""
	}
	// No proxy from the environment: the node is only on the test network.
	resp, err := (&http.Client{Transport: &http.Transport{}}).Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return string(body)
}

// afterServer drops nslookup's "Server:/Address:" header, which names the
// DNS server's own address.
func afterServer(out string) string {
	if i := strings.Index(out, "Name:"); i >= 0 {
		return out[i:]
	}
	return ""
}

// chartArchive packs files into a chart .tgz and returns it base64-encoded,
// as spec.chartContent takes it.
func chartArchive(t *testing.T, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, content := range files {
		if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(content)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}

// restartWithout stops the node and starts it again with an add-on
// disabled (--disable), waiting until it is ready.
func restartWithout(t *testing.T, node *harness.Node, addon string) {
	t.Helper()
	if code, _, err := node.Terminate(60 * time.Second); err != nil || code != 0 {
		t.Fatalf("stop: code %d, %v", code, err)
	}
	node.StartIn("server", "--enable-worker", "--data-dir", node.DataDir, "--config", node.ConfigPath,
		"--cgroup-root", node.CgroupRoot, "--node-name", node.Name, "--disable", addon)
	node.WaitReady(3 * time.Minute)
}
