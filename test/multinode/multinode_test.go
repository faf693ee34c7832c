package multinode

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/internal/join"
	"github.com/monokube/monokube/test/harness"
)

// TestThreeNodeCluster is the walk-through: a server with a worker and two
// `monokube worker` nodes joined with one token. The checks share the
// cluster; the disruptive ones come last.
func TestThreeNodeCluster(t *testing.T) {
	c := startCluster(t, 2, "")
	client := c.Client()
	pods := webPods(t, c) // also: a DaemonSet runs a pod on each node

	t.Run("PodToPodAcrossNodes", func(t *testing.T) { checkPodToPod(t, c, pods) })

	t.Run("OnlyTheServerNodeHasTheControlPlaneRole", func(t *testing.T) {
		harness.Poll(t, 30*time.Second, "server node labelled", func(ctx context.Context) (bool, error) {
			n, err := client.CoreV1().Nodes().Get(ctx, c.Server.Name, metav1.GetOptions{})
			return err == nil && n.Labels["node-role.kubernetes.io/control-plane"] == "true", nil
		})
		for _, worker := range c.Workers {
			n, err := client.CoreV1().Nodes().Get(context.Background(), worker.Name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if _, labelled := n.Labels["node-role.kubernetes.io/control-plane"]; labelled {
				t.Errorf("worker %s has the control-plane role", worker.Name)
			}
		}
	})

	t.Run("ServiceOnOtherNodeFromEveryNode", func(t *testing.T) {
		// A Service backed by one pod, on the last worker: every other
		// node must reach it across the pod network.
		backend := c.Workers[len(c.Workers)-1]
		c.Server.MustKubectl("label", "pod", pods[backend.Name].Name, "solo=yes")
		c.Server.Apply(`apiVersion: v1
kind: Service
metadata: {name: solo, namespace: default}
spec:
  type: NodePort
  selector: {solo: "yes"}
  ports: [{port: 80, targetPort: 8080}]
`)
		svc, err := client.CoreV1().Services("default").Get(context.Background(), "solo", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		nodePort := svc.Spec.Ports[0].NodePort
		want := pods[backend.Name].Name
		for _, node := range c.All() {
			harness.Poll(t, 30*time.Second, "ClusterIP from "+node.Name, func(context.Context) (bool, error) {
				return strings.Contains(node.HTTPFrom(svc.Spec.ClusterIP, 80), want), nil
			})
			harness.Poll(t, 30*time.Second, fmt.Sprintf("NodePort on %s (%s:%d)", node.Name, node.IP, nodePort), func(context.Context) (bool, error) {
				return strings.Contains(c.Server.HTTPFrom(node.IP, nodePort), want), nil
			})
		}
	})

	t.Run("LogsAndExecOnWorker", func(t *testing.T) {
		pod := pods[c.Workers[0].Name].Name
		if out, err := c.Server.Kubectl("exec", pod, "--", "cat", "/www/index.html"); err != nil || strings.TrimSpace(out) != pod {
			t.Errorf("exec on a worker's pod: %v: %q", err, out)
		}
		c.Server.MustKubectl("run", "talker", "--image="+image, "--image-pull-policy=IfNotPresent", "--restart=Never",
			"--overrides", fmt.Sprintf(`{"spec":{"nodeName":%q}}`, c.Workers[0].Name), "--", "echo", "hello from a worker")
		harness.WaitPhase(t, client, "default", "talker", corev1.PodSucceeded)
		if out, err := c.Server.Kubectl("logs", "talker"); err != nil || strings.TrimSpace(out) != "hello from a worker" {
			t.Errorf("logs from a worker's pod: %v: %q", err, out)
		}
	})

	t.Run("WorkerCertificatesComeFromTheCluster", func(t *testing.T) {
		stdout, stderr, err := c.Workers[0].Run("certs", "status")
		if err != nil {
			t.Fatalf("certs status on a worker: %v\n%s", err, stderr)
		}
		worker := c.Workers[0].Name
		for _, want := range []string{
			"node/kubelet-client", "CN=system:node:" + worker + ",O=system:nodes",
			"node/kubelet-server", // the serving certificate, approved for the Node's addresses
			"node/kube-proxy", "CN=system:kube-proxy", "node/ca",
		} {
			if !strings.Contains(stdout, want) {
				t.Errorf("certs status on %s lacks %q:\n%s", worker, want, stdout)
			}
		}
	})

	t.Run("BadTokensFailFastAndCreateNoNode", func(t *testing.T) {
		good := c.Token("--expiry=1h")
		parsed, err := join.Parse(good)
		if err != nil {
			t.Fatal(err)
		}
		invalidated := c.Token("--expiry=1h")
		if _, stderr, err := c.Server.Run("token", "invalidate", mustParse(t, invalidated).ID()); err != nil {
			t.Fatalf("token invalidate: %v\n%s", err, stderr)
		}
		expired := c.Token("--expiry=1s")
		otherCluster := parsed
		otherCluster.CAHash = join.CAHash(randomCA(t))
		cases := []struct{ name, token, want string }{
			{"expired", expired, "expired at"},
			{"invalidated", invalidated, "was invalidated"},
			{"other-cluster", otherCluster.String(), "is not the one this token pins"},
			{"garbled", good[:len(good)/2], "garbled or truncated"},
		}
		// Wait out the short token's own expiry (whole seconds), no longer.
		time.Sleep(time.Until(mustParse(t, expired).Expires.Add(time.Second)))
		nodes := make([]*harness.Node, len(cases))
		for i, tc := range cases {
			nodes[i] = c.NewNode("")
			if tc.name == "garbled" { // one case through --token-file
				file := filepath.Join(t.TempDir(), "token")
				if err := os.WriteFile(file, []byte(tc.token+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				nodes[i].StartWorker("--token-file", file)
				continue
			}
			nodes[i].StartWorker(tc.token)
		}
		for i, tc := range cases {
			code, err := nodes[i].WaitExit(30 * time.Second)
			if err != nil {
				t.Errorf("%s token: worker %v", tc.name, err)
				continue
			}
			log := nodes[i].Log()
			if code == 0 || !strings.Contains(log, tc.want) {
				t.Errorf("%s token: exit %d, want non-zero and %q in:\n%s", tc.name, code, tc.want, lastLines(log, 5))
			}
			t.Logf("%s token: exit %d: %s", tc.name, code, lastLines(log, 1))
			if nodeExists(t, c, nodes[i].Name) {
				t.Errorf("%s token created Node %s", tc.name, nodes[i].Name)
			}
			// What the refused join wrote is gone; the images dir the
			// test put there and the launcher's payload stay.
			if entries, _ := os.ReadDir(nodes[i].DataDir); len(entries) != 2 {
				t.Errorf("%s token left %v in the data dir", tc.name, entries)
			}
		}
	})

	t.Run("NodeNameOfAnotherMachineIsRefused", func(t *testing.T) {
		impostor := c.NewNode("")
		taken := c.Workers[0].Name
		impostor.StartIn("worker", c.Token(), "--data-dir", impostor.DataDir, "--cgroup-root", impostor.CgroupRoot, "--node-name", taken)
		code, err := impostor.WaitExit(90 * time.Second)
		if err != nil {
			t.Fatalf("impostor worker %v", err)
		}
		log := impostor.Log()
		if code == 0 || !strings.Contains(log, "is taken by another machine") {
			t.Errorf("exit %d; want a refusal naming the taken node name:\n%s", code, lastLines(log, 5))
		}
		t.Logf("impostor: exit %d: %s", code, lastLines(log, 1))
		n, err := client.CoreV1().Nodes().Get(context.Background(), taken, metav1.GetOptions{})
		if err != nil || !harness.NodeReady(n) {
			t.Errorf("the real %s is not Ready after the impostor: %v", taken, err)
		}
	})

	t.Run("PodsSeeEachOthersRealIPs", func(t *testing.T) {
		// A pod on a worker answers with the address its request came from
		// (busybox httpd gives CGI scripts REMOTE_ADDR); asked from a pod
		// on the server's node, that must be the asking pod's own IP, not a
		// node address a masquerading path would put there.
		worker := c.Workers[0]
		c.Server.MustKubectl("run", "whoasks", "--image="+image, "--image-pull-policy=IfNotPresent",
			"--overrides", fmt.Sprintf(`{"spec":{"nodeName":%q}}`, worker.Name), "--", "sh", "-c",
			`mkdir -p /www/cgi-bin && printf '#!/bin/sh\necho Content-Type: text/plain\necho\necho "$REMOTE_ADDR"\n' > /www/cgi-bin/ip && chmod +x /www/cgi-bin/ip && exec httpd -f -p 8080 -h /www`)
		server := harness.WaitPhase(t, client, "default", "whoasks", corev1.PodRunning)
		asker := pods[c.Server.Name]
		var answer string
		harness.Poll(t, time.Minute, "the CGI answers", func(context.Context) (bool, error) {
			out, err := c.Server.Kubectl("exec", asker.Name, "--", "sh", "-c",
				fmt.Sprintf(`printf 'GET /cgi-bin/ip HTTP/1.0\r\n\r\n' | nc -w 3 %s 8080`, server.Status.PodIP))
			answer = out
			return err == nil && strings.Contains(out, "200"), nil
		})
		// httpd listens on IPv6 too and reports "[::ffff:10.42.0.2]".
		lines := strings.Fields(answer)
		seen := ""
		if len(lines) > 0 {
			seen = strings.TrimPrefix(strings.Trim(lines[len(lines)-1], "[]"), "::ffff:")
		}
		if seen != asker.Status.PodIP {
			t.Errorf("pod %s (%s) was seen as %q by the pod on %s", asker.Name, asker.Status.PodIP, answer, worker.Name)
		}
	})

	t.Run("ClusterDNSFromAPodOnAWorker", func(t *testing.T) {
		worker := c.Workers[0]
		var out string
		if !harness.PollOK(90*time.Second, func(context.Context) (bool, error) {
			out, _ = c.Server.Kubectl("exec", pods[worker.Name].Name, "--", "nslookup", "kubernetes.default.svc.cluster.local")
			return strings.Contains(out, "Name:") && strings.Contains(out, "10.43.0.1"), nil
		}) {
			t.Fatalf("nslookup from a pod on %s:\n%s", worker.Name, out)
		}
		// Node names resolve from every node (NodeHosts). A node that
		// joined a moment ago takes up to the kubelet's ConfigMap refresh
		// (about a minute) to appear in CoreDNS's mounted file.
		other := c.Workers[len(c.Workers)-1]
		if !harness.PollOK(150*time.Second, func(context.Context) (bool, error) {
			out, _ = c.Server.Kubectl("exec", pods[worker.Name].Name, "--", "nslookup", other.Name+".")
			return strings.Contains(out, other.IP), nil
		}) {
			t.Errorf("node name lookup from %s:\n%s", worker.Name, out)
		}
	})

	t.Run("NetworkPolicyAcrossNodes", func(t *testing.T) {
		from, to := pods[c.Server.Name], pods[c.Workers[0].Name]
		reach := func() bool {
			out, _ := c.Server.Kubectl("exec", from.Name, "--", "sh", "-c",
				fmt.Sprintf(`printf "GET / HTTP/1.0\r\n\r\n" | nc -w 2 %s 8080`, to.Status.PodIP))
			return strings.Contains(out, to.Name)
		}
		harness.Poll(t, 30*time.Second, "server's pod reaches the worker's before any policy", func(context.Context) (bool, error) { return reach(), nil })
		c.Server.Apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-deny, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  policyTypes: [Ingress]
`)
		defer c.Server.MustKubectl("delete", "networkpolicy", "web-deny", "web-from-server", "--ignore-not-found")
		harness.PollSteady(t, 45*time.Second, 3, "the policy blocks the server's pod → the worker's", func() bool { return !reach() })
		// Allowed again, but only from pods on the server's node: by the
		// source pod's IP block.
		c.Server.Apply(fmt.Sprintf(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: web-from-server, namespace: default}
spec:
  podSelector: {matchLabels: {app: web}}
  ingress:
  - from: [{ipBlock: {cidr: %s/32}}]
    ports: [{port: 8080}]
`, from.Status.PodIP))
		harness.Poll(t, 30*time.Second, "the ipBlock policy lets the server's pod through", func(context.Context) (bool, error) { return reach(), nil })
	})

	t.Run("PVCOnAWorkersNode", func(t *testing.T) {
		worker := c.Workers[len(c.Workers)-1]
		c.Server.Apply(fmt.Sprintf(`apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: onworker, namespace: default}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 16Mi}}
---
apiVersion: v1
kind: Pod
metadata: {name: onworker, namespace: default}
spec:
  nodeSelector: {kubernetes.io/hostname: %s}
  containers:
  - name: c
    image: %s
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "echo from-worker > /data/f && exec sleep 3600"]
    volumeMounts: [{name: d, mountPath: /data}]
  volumes:
  - name: d
    persistentVolumeClaim: {claimName: onworker}
`, worker.Name, image))
		harness.WaitPhase(t, client, "default", "onworker", corev1.PodRunning)
		pvc, err := client.CoreV1().PersistentVolumeClaims("default").Get(context.Background(), "onworker", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(worker.DataDir, "storage", pvc.Spec.VolumeName+"_default_onworker")
		if raw, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(raw) != "from-worker\n" {
			t.Fatalf("volume not in the worker's data dir %s: %v %q", dir, err, raw)
		}
		c.Server.MustKubectl("delete", "pod", "onworker", "--grace-period=1")
		c.Server.MustKubectl("delete", "pvc", "onworker")
		harness.Poll(t, 90*time.Second, "the worker's volume directory removed", func(context.Context) (bool, error) {
			_, err := os.Stat(dir)
			return os.IsNotExist(err), nil
		})
	})

	t.Run("WorkerRestartsWithoutToken", func(t *testing.T) {
		worker := c.Workers[0]
		before := containerIDs(t, c)
		worker.Kill() // kill -9
		worker.StartWorker()
		harness.Poll(t, 2*time.Minute, "worker ready again", func(context.Context) (bool, error) {
			return strings.Count(worker.Log(), "monokube worker is ready") == 2, nil
		})
		if !strings.Contains(worker.Log(), "no join token needed") {
			t.Errorf("restart did not use the saved credentials")
		}
		c.WaitReady(worker)
		// kill -9 of monokube leaves the worker's containers running: the
		// restarted node adopts them (same container, no restart).
		pod := pods[worker.Name].Name
		if after := containerIDs(t, c); before[pod] == "" || before[pod] != after[pod] {
			t.Errorf("pod %s on %s changed across kill -9 of its worker: %q → %q", pod, worker.Name, before[pod], after[pod])
		}
	})

	t.Run("ServerRestartKeepsWorkerPodsRunning", func(t *testing.T) {
		before := containerIDs(t, c)
		if code, _, err := c.Server.Terminate(time.Minute); err != nil || code != 0 {
			t.Fatalf("server stop: exit %d, %v", code, err)
		}
		// With the server down, pods on workers still serve.
		for _, worker := range c.Workers {
			if out := worker.HTTPFrom(pods[worker.Name].Status.PodIP, 8080); !strings.Contains(out, pods[worker.Name].Name) {
				t.Errorf("pod on %s does not answer while the server is down: %q", worker.Name, out)
			}
		}
		restarted := time.Now()
		c.Server.StartReady()
		for _, worker := range c.Workers {
			// A connected kubelet renews its Lease every 10 s.
			harness.Poll(t, 2*time.Minute, worker.Name+" reconnects", func(ctx context.Context) (bool, error) {
				lease, err := client.CoordinationV1().Leases("kube-node-lease").Get(ctx, worker.Name, metav1.GetOptions{})
				return err == nil && lease.Spec.RenewTime != nil && lease.Spec.RenewTime.After(restarted), nil
			})
			n, err := client.CoreV1().Nodes().Get(context.Background(), worker.Name, metav1.GetOptions{})
			if err != nil || !harness.NodeReady(n) {
				t.Errorf("%s not Ready after the server restart: %v", worker.Name, err)
			}
		}
		after := containerIDs(t, c)
		// The server's own node keeps its pods too: the server is also a node.
		for _, node := range c.All() {
			pod := pods[node.Name].Name
			if before[pod] == "" || before[pod] != after[pod] {
				t.Errorf("pod %s on %s changed across the server restart: %q → %q", pod, node.Name, before[pod], after[pod])
			}
		}
	})

	t.Run("DeletedNodeNameCanJoinAgain", func(t *testing.T) {
		old := c.Workers[len(c.Workers)-1]
		code, took, err := old.Terminate(time.Minute)
		if err != nil || code != 0 {
			t.Errorf("worker SIGTERM: exit %d after %s: %v", code, took, err)
		}
		t.Logf("worker stopped on SIGTERM in %s", took.Round(time.Millisecond))
		c.Server.MustKubectl("delete", "node", old.Name)
		replacement := c.NewNode("")
		replacement.StartIn("worker", c.Token(), "--data-dir", replacement.DataDir, "--cgroup-root", replacement.CgroupRoot, "--node-name", old.Name,
			"--node-label", "tier=edge", "--node-taint", "dedicated=edge:NoSchedule")
		var n *corev1.Node
		harness.Poll(t, 2*time.Minute, "replacement Ready as "+old.Name, func(ctx context.Context) (bool, error) {
			var err error
			n, err = client.CoreV1().Nodes().Get(ctx, old.Name, metav1.GetOptions{})
			return err == nil && harness.NodeReady(n), nil
		})
		// The new machine registers with its own labels and taints (next to
		// the controllers' own, such as not-ready for a moment).
		tainted := slices.ContainsFunc(n.Spec.Taints, func(taint corev1.Taint) bool {
			return taint.Key == "dedicated" && taint.Value == "edge" && taint.Effect == corev1.TaintEffectNoSchedule
		})
		if n.Labels["tier"] != "edge" || !tainted {
			t.Errorf("node %s: labels %v, taints %v; want tier=edge and dedicated=edge:NoSchedule", old.Name, n.Labels, n.Spec.Taints)
		}
	})
}

// TestHostGatewayWithNFTables covers the other flannel backend and packet
// filter: plain routes between the nodes and nftables for masquerading.
func TestHostGatewayWithNFTables(t *testing.T) {
	c := startCluster(t, 1, "  network:\n    kubeProxy:\n      mode: nftables\n    flannel:\n      backend: host-gw\n  worker:\n    labels: [tier=core]\n")
	pods := webPods(t, c)
	if n, err := c.Client().CoreV1().Nodes().Get(context.Background(), c.Server.Name, metav1.GetOptions{}); err != nil || n.Labels["tier"] != "core" {
		t.Errorf("server node lacks spec.worker.labels (tier=core): %v", err)
	}
	checkPodToPod(t, c, pods)
	worker := c.Workers[0]
	routes, err := c.Server.InNode("ip", "route")
	if err != nil {
		t.Errorf("ip route: %v\n%s", err, routes)
	}
	if !strings.Contains(routes, "via "+worker.IP+" dev eth0") || strings.Contains(routes, "flannel.1") {
		t.Errorf("want a plain route to %s's pod CIDR via %s, no VXLAN:\n%s", worker.Name, worker.IP, routes)
	}
	if out, err := c.Server.InNode("nft", "list", "table", "ip", "flannel-ipv4"); err != nil || !strings.Contains(out, "masquerade") {
		t.Errorf("no flannel nftables masquerade rules (%v):\n%s", err, out)
	}
	if out, err := c.Server.InNode("iptables-save"); err != nil {
		t.Errorf("iptables-save (needed to show there are no flannel iptables rules): %v\n%s", err, out)
	} else if strings.Contains(out, "FLANNEL-") {
		t.Errorf("flannel iptables rules on an nftables node:\n%s", out)
	}
}

// checkPodToPod has every web pod fetch every other one by pod IP.
func checkPodToPod(t *testing.T, c *harness.Cluster, pods map[string]corev1.Pod) {
	t.Helper()
	for _, from := range c.All() {
		for _, to := range c.All() {
			if from == to {
				continue
			}
			target := pods[to.Name]
			out, err := podHTTP(c, pods[from.Name], target.Status.PodIP, 8080)
			if err != nil || !strings.Contains(out, target.Name) {
				t.Errorf("pod on %s → pod on %s (%s): %v\n%s", from.Name, to.Name, target.Status.PodIP, err, out)
			}
		}
	}
}

// containerIDs maps the web pods to "containerID/restarts".
func containerIDs(t *testing.T, c *harness.Cluster) map[string]string {
	t.Helper()
	pods, err := c.Client().CoreV1().Pods("default").List(context.Background(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, pod := range pods.Items {
		if len(pod.Status.ContainerStatuses) > 0 {
			status := pod.Status.ContainerStatuses[0]
			ids[pod.Name] = fmt.Sprintf("%s/%d", status.ContainerID, status.RestartCount)
		}
	}
	return ids
}

func mustParse(t *testing.T, text string) join.Token {
	t.Helper()
	token, err := join.Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// randomCA is a CA of no cluster, for a token pinning "another cluster".
func randomCA(t *testing.T) *x509.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	template := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other-ca"}, IsCA: true,
		BasicConstraintsValid: true, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, template, template, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

func lastLines(text string, n int) string {
	lines := strings.Split(strings.TrimSpace(text), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
