package servicelb

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func node(name, ip string, ready bool, labels map[string]string) *corev1.Node {
	status := corev1.ConditionFalse
	if ready {
		status = corev1.ConditionTrue
	}
	return &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
		Status: corev1.NodeStatus{
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: status}},
			Addresses:  []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}},
		},
	}
}

func service(name string, age time.Duration, ports ...int32) *corev1.Service {
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: metav1.NewTime(time.Unix(1e9, 0).Add(-age))},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
	}
	for _, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Port: p, Protocol: corev1.ProtocolTCP})
	}
	return svc
}

func ips(d decision) string {
	var out []string
	for _, in := range d.ingress {
		out = append(out, in.IP)
	}
	return strings.Join(out, ",")
}

func TestAssign(t *testing.T) {
	nodes := []*corev1.Node{node("b", "10.0.0.2", true, nil), node("a", "10.0.0.1", true, nil), node("c", "10.0.0.3", false, nil)}
	none := func(*corev1.Service) map[string]bool { return nil }
	older, newer := service("older", time.Hour, 80, 443), service("newer", time.Minute, 8080, 80)
	classed := service("classed", 2*time.Hour, 80)
	class := "other.example/lb"
	classed.Spec.LoadBalancerClass = &class
	got := assign([]*corev1.Service{newer, older, classed}, nodes, none)
	if ips(got["default/older"]) != "10.0.0.1,10.0.0.2" || got["default/older"].conflict != "" {
		t.Errorf("older: %+v", got["default/older"])
	}
	if d := got["default/newer"]; len(d.ingress) != 0 || !strings.Contains(d.conflict, "port 80/TCP is already used by LoadBalancer Service default/older") {
		t.Errorf("newer: %+v", d)
	}
	if _, ok := got["default/classed"]; ok {
		t.Error("a Service with a loadBalancerClass is another controller's")
	}

	// Once a node carries the label, only "true" nodes serve.
	nodes[0].Labels = map[string]string{EnableLabel: "true"}
	nodes[1].Labels = map[string]string{EnableLabel: "false"}
	if got := assign([]*corev1.Service{older}, nodes, none); ips(got["default/older"]) != "10.0.0.2" {
		t.Errorf("limited by label: %s", ips(got["default/older"]))
	}

	// externalTrafficPolicy Local: only nodes with a ready endpoint.
	nodes[0].Labels, nodes[1].Labels = nil, nil
	older.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	local := func(*corev1.Service) map[string]bool { return map[string]bool{"a": true} }
	if got := assign([]*corev1.Service{older}, nodes, local); ips(got["default/older"]) != "10.0.0.1" {
		t.Errorf("Local policy: %s", ips(got["default/older"]))
	}
}
