package multinode

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

const dualStackSpec = "  network:\n    podCIDR: 10.42.0.0/16,fd00:42::/56\n    serviceCIDR: 10.43.0.0/16,fd00:43::/112\n"

// TestDualStack runs a server (a node too) and a worker, each with an IPv4
// and an IPv6 address on one interface (found by themselves: no
// --node-ip), on a dual-stack cluster: pods get an address of each
// family, reach each other across the nodes over IPv6, a RequireDualStack
// Service answers on both ClusterIPs and on both families of its
// LoadBalancer ingress, DNS answers AAAA, and a NetworkPolicy closes both.
func TestDualStack(t *testing.T) {
	c := harness.NewCluster(t, dualStackSpec)
	c.Server.AddIPv6()
	c.Server.StartReady()
	worker := c.AddWorker()
	worker.AddIPv6()
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(c.All()...)
	client := c.Client()

	for _, n := range c.All() {
		node, err := client.CoreV1().Nodes().Get(context.Background(), n.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(node.Spec.PodCIDRs) != 2 || !hasAddress(node, n.IP) || !hasAddress(node, n.IP6) {
			t.Errorf("node %s: pod CIDRs %v, addresses %v; want both families", n.Name, node.Spec.PodCIDRs, node.Status.Addresses)
		}
	}
	pods := webPods(t, c)
	for node, pod := range pods {
		if len(pod.Status.PodIPs) != 2 || ipv6Of(pod) == "" {
			t.Errorf("pod on %s has addresses %v, want an IPv4 and an IPv6", node, pod.Status.PodIPs)
		}
	}
	from, to := pods[c.Server.Name], pods[worker.Name]
	fetch := func(pod corev1.Pod, host string, port int) (string, error) {
		return podHTTP(c, pod, host, port)
	}
	harness.Poll(t, time.Minute, "pod to pod across the nodes over IPv6", func(context.Context) (bool, error) {
		out, err := fetch(from, ipv6Of(to), 8080)
		return err == nil && strings.Contains(out, to.Name), nil
	})

	c.Server.MustKubectl("label", "pod", to.Name, "dual=yes")
	c.Server.Apply(`apiVersion: v1
kind: Service
metadata: {name: dual, namespace: default}
spec:
  type: LoadBalancer
  ipFamilyPolicy: RequireDualStack
  selector: {dual: "yes"}
  ports: [{port: 8081, targetPort: 8080}]
`)
	svc, err := client.CoreV1().Services("default").Get(context.Background(), "dual", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.ClusterIPs) != 2 {
		t.Fatalf("RequireDualStack Service has ClusterIPs %v, want two", svc.Spec.ClusterIPs)
	}
	for _, ip := range svc.Spec.ClusterIPs {
		harness.Poll(t, time.Minute, "the Service on ClusterIP "+ip, func(context.Context) (bool, error) {
			out, err := fetch(from, ip, 8081)
			return err == nil && strings.Contains(out, to.Name), nil
		})
	}
	harness.Poll(t, time.Minute, "DNS answers AAAA for the Service", func(context.Context) (bool, error) {
		out, err := c.Server.Kubectl("exec", from.Name, "--", "nslookup", "-type=AAAA", "dual.default.svc.cluster.local")
		return err == nil && strings.Contains(out, svc.Spec.ClusterIPs[1]), nil
	})

	var ingress []string
	harness.Poll(t, time.Minute, "LoadBalancer ingress of both families", func(ctx context.Context) (bool, error) {
		s, err := client.CoreV1().Services("default").Get(ctx, "dual", metav1.GetOptions{})
		if err != nil {
			return false, nil
		}
		ingress = nil
		for _, in := range s.Status.LoadBalancer.Ingress {
			ingress = append(ingress, in.IP)
		}
		return strings.Contains(strings.Join(ingress, " "), worker.IP6) && strings.Contains(strings.Join(ingress, " "), worker.IP), nil
	})
	for _, ip := range []string{worker.IP, worker.IP6, c.Server.IP6} {
		harness.Poll(t, time.Minute, "the LoadBalancer on "+ip+" from the server node", func(context.Context) (bool, error) {
			return strings.Contains(c.Server.HTTPFrom(ip, 8081), to.Name), nil
		})
	}

	// A policy admitting nothing to the pod closes both families.
	c.Server.Apply(`apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: closed, namespace: default}
spec:
  podSelector: {matchLabels: {dual: "yes"}}
  policyTypes: [Ingress]
`)
	for _, ip := range []string{ipv6Of(to), to.Status.PodIP} {
		harness.Poll(t, time.Minute, "the NetworkPolicy refuses "+ip, func(context.Context) (bool, error) {
			_, err := fetch(from, ip, 8080)
			return err != nil, nil
		})
	}
}

// TestIPv6Only runs a single node whose cluster has IPv6 ranges only: a
// pod resolves a Service's name to its IPv6 ClusterIP and reaches it.
func TestIPv6Only(t *testing.T) {
	spec := "  network:\n    podCIDR: fd00:42::/56\n    serviceCIDR: fd00:43::/112\n"
	c := harness.NewCluster(t, spec)
	s := c.Server
	s.Address = s.AddIPv6()
	s.WriteConfig("", spec)
	s.StartReady()
	c.WaitReady(s)
	pods := webPods(t, c)
	pod := pods[s.Name]
	if ip := net.ParseIP(pod.Status.PodIP); ip == nil || ip.To4() != nil || len(pod.Status.PodIPs) != 1 {
		t.Errorf("pod addresses %v, want one IPv6", pod.Status.PodIPs)
	}
	c.Server.Apply(`apiVersion: v1
kind: Service
metadata: {name: six, namespace: default}
spec:
  selector: {app: web}
  ports: [{port: 80, targetPort: 8080}]
`)
	name := "six.default.svc.cluster.local"
	var clusterIP string
	harness.Poll(t, time.Minute, "a pod resolves the Service's name to an IPv6 address", func(context.Context) (bool, error) {
		out, err := c.Server.Kubectl("exec", pod.Name, "--", "nslookup", "-type=AAAA", name)
		clusterIP = answer(out, name)
		return err == nil && clusterIP != "", nil
	})
	harness.Poll(t, time.Minute, "the pod reaches the Service at "+clusterIP, func(context.Context) (bool, error) {
		out, err := podHTTP(c, pod, clusterIP, 80)
		return err == nil && strings.Contains(out, pod.Name), nil
	})
	out := c.Server.MustKubectl("get", "svc", "kubernetes", "-o", "jsonpath={.spec.clusterIP}")
	if ip := net.ParseIP(out); ip == nil || ip.To4() != nil {
		t.Errorf("the kubernetes Service's ClusterIP %q, want IPv6", out)
	}
}

// podHTTP asks host:port for / from inside pod (busybox nc: the static
// busybox's wget crashes on name lookups in a container).
func podHTTP(c *harness.Cluster, pod corev1.Pod, host string, port int) (string, error) {
	return c.Server.Kubectl("exec", pod.Name, "--", "sh", "-c",
		fmt.Sprintf(`printf "GET / HTTP/1.0\r\n\r\n" | nc -w 3 %s %d`, host, port))
}

// answer is the address nslookup printed for name, or "".
func answer(out, name string) string {
	_, after, found := strings.Cut(out, "Name:\t"+name)
	if !found {
		return ""
	}
	for _, line := range strings.Split(after, "\n") {
		if value, ok := strings.CutPrefix(strings.TrimSpace(line), "Address:"); ok {
			return strings.TrimSpace(value)
		}
	}
	return ""
}

func hasAddress(node *corev1.Node, ip string) bool {
	for _, addr := range node.Status.Addresses {
		if addr.Address == ip {
			return true
		}
	}
	return false
}

func ipv6Of(pod corev1.Pod) string {
	for _, ip := range pod.Status.PodIPs {
		if strings.Contains(ip.IP, ":") {
			return ip.IP
		}
	}
	return ""
}
