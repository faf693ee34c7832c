package multinode

import (
	"context"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/monokube/monokube/test/harness"
)

// TestNodesWithoutHostNetTools runs a server with a worker and a worker
// whose mount namespaces hide every iptables, ip6tables, nft, ipset and
// conntrack of the machine: both get Ready, enforce NetworkPolicies (ipset)
// and serve a ClusterIP Service from each node with the tools monokube
// carries, on the default backend, since the host shows them none.
func TestNodesWithoutHostNetTools(t *testing.T) {
	c := harness.NewCluster(t, "")
	c.Server.HideHostNetTools()
	c.Server.StartReady()
	worker := c.AddWorker()
	worker.HideHostNetTools()
	worker.StartWorker(c.Token("--expiry=1h"))
	c.WaitReady(c.All()...)
	for _, node := range c.All() {
		out, err := node.InNode("/bin/sh", "-c", "for t in iptables ip6tables iptables-restore nft ipset conntrack xtables-nft-multi; do "+
			"for d in /usr/sbin /sbin /usr/bin /bin; do test -e $d/$t && echo $d/$t; done; done; true")
		if err != nil || strings.TrimSpace(out) != "" {
			t.Fatalf("%s still sees host tools (err %v):\n%s", node.Name, err, out)
		}
		if !strings.Contains(node.Log(), `"iptables backend chosen" mode="nft" reason="no rules and no iptables on the host: the default"`) {
			t.Errorf("%s did not choose nft as the default backend:\n%s", node.Name, harness.GrepLines(node.Log(), "iptables backend"))
		}
	}

	pods := webPods(t, c)
	c.Server.Apply("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\n" +
		"spec: {selector: {app: web}, ports: [{port: 80, targetPort: 8080}]}\n")
	svc, err := c.Client().CoreV1().Services("default").Get(context.Background(), "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, node := range c.All() {
		harness.Poll(t, time.Minute, "ClusterIP answers on "+node.Name, func(context.Context) (bool, error) {
			out := node.HTTPFrom(svc.Spec.ClusterIP, 80)
			for _, pod := range pods {
				if strings.Contains(out, pod.Name) {
					return true, nil
				}
			}
			return false, nil
		})
		// kube-proxy's rules, written with the bundled iptables.
		if out, err := node.InNode("iptables-save", "-t", "nat"); err != nil || !strings.Contains(out, svc.Spec.ClusterIP) {
			t.Errorf("%s: no kube-proxy rule for %s (err %v):\n%s", node.Name, svc.Spec.ClusterIP, err, out)
		}
	}
	// A policy makes the policy controller create its ipsets on every node.
	c.Server.Apply("apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: web, namespace: default}\n" +
		"spec: {podSelector: {matchLabels: {app: web}}, ingress: [{from: [{podSelector: {}}]}]}\n")
	for _, node := range c.All() {
		harness.Poll(t, time.Minute, "NetworkPolicy ipsets on "+node.Name, func(context.Context) (bool, error) {
			out, err := node.InNode("ipset", "list", "-n")
			return err == nil && strings.Contains(out, "KUBE-"), nil
		})
	}
}
