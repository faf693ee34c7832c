// Package servicelb gives LoadBalancer Services an address without a cloud:
// the IPs of the nodes that serve them, as k3s's ServiceLB does. It needs no
// image and no per-Service pods: it only writes status.loadBalancer, and
// every node's kube-proxy already sends traffic for a Service's ingress IPs
// and ports to its endpoints. Two Services cannot share a port on the same
// addresses: the later one stays pending, with an Event that says why.
package servicelb

import (
	"fmt"
	"net"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/monokube/monokube/internal/kubeclient"
)

// EnableLabel limits the nodes that serve LoadBalancer Services: once any
// node carries it, only nodes with the value "true" do (k3s's
// svccontroller.k3s.cattle.io/enablelb, in our own domain).
const EnableLabel = "svccontroller.monokube.io/enablelb"

// portKey is a port as two LoadBalancer Services may compete for it.
type portKey struct {
	protocol corev1.Protocol
	port     int32
}

func (p portKey) String() string { return fmt.Sprintf("%d/%s", p.port, p.protocol) }

// decision is what one Service gets: ingress addresses, or the reason it
// gets none.
type decision struct {
	ingress  []corev1.LoadBalancerIngress
	conflict string
}

// handled reports whether the Service is ours: a LoadBalancer without a
// loadBalancerClass (another controller owns classed ones).
func handled(svc *corev1.Service) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && svc.Spec.LoadBalancerClass == nil && svc.DeletionTimestamp == nil
}

// servingNodes are the Ready nodes allowed to serve LoadBalancers.
func servingNodes(nodes []*corev1.Node) []*corev1.Node {
	limited := slices.ContainsFunc(nodes, func(n *corev1.Node) bool { _, ok := n.Labels[EnableLabel]; return ok })
	var out []*corev1.Node
	for _, node := range nodes {
		if limited && node.Labels[EnableLabel] != "true" {
			continue
		}
		if node.DeletionTimestamp != nil || !kubeclient.NodeReady(node) {
			continue
		}
		out = append(out, node)
	}
	slices.SortFunc(out, func(a, b *corev1.Node) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// nodeAddresses are what clients reach a node by, one per family of the
// Service (its external IP of the family when it has one, else its
// internal IP), so a dual-stack Service gets an ingress of each family.
func nodeAddresses(node *corev1.Node, families []corev1.IPFamily) []string {
	if len(families) == 0 {
		families = []corev1.IPFamily{corev1.IPv4Protocol}
	}
	var out []string
	for _, fam := range families {
		var external, internal string
		for _, addr := range node.Status.Addresses {
			ip := net.ParseIP(addr.Address)
			if ip == nil || (ip.To4() != nil) != (fam == corev1.IPv4Protocol) {
				continue
			}
			switch {
			case addr.Type == corev1.NodeExternalIP && external == "":
				external = addr.Address
			case addr.Type == corev1.NodeInternalIP && internal == "":
				internal = addr.Address
			}
		}
		if external != "" {
			out = append(out, external)
		} else if internal != "" {
			out = append(out, internal)
		}
	}
	return out
}

// assign decides every handled Service's ingress. Services hold their
// ports in creation order, so an existing Service never loses its ports to
// a newer one. endpointNodes gives the nodes with ready endpoints of a
// Service, for externalTrafficPolicy Local.
func assign(services []*corev1.Service, nodes []*corev1.Node, endpointNodes func(*corev1.Service) map[string]bool) map[string]decision {
	ordered := slices.Clone(services)
	slices.SortFunc(ordered, func(a, b *corev1.Service) int {
		if c := a.CreationTimestamp.Compare(b.CreationTimestamp.Time); c != 0 {
			return c
		}
		return strings.Compare(a.Namespace+"/"+a.Name, b.Namespace+"/"+b.Name)
	})
	serving := servingNodes(nodes)
	holders := map[portKey]string{}
	out := map[string]decision{}
	for _, svc := range ordered {
		if !handled(svc) {
			continue
		}
		key := svc.Namespace + "/" + svc.Name
		var conflicts []string
		for _, port := range svc.Spec.Ports {
			p := portKey{protocol: port.Protocol, port: port.Port}
			if holder, taken := holders[p]; taken {
				conflicts = append(conflicts, fmt.Sprintf("port %s is already used by LoadBalancer Service %s", p, holder))
			}
		}
		if len(conflicts) > 0 {
			out[key] = decision{conflict: strings.Join(conflicts, "; ")}
			continue
		}
		for _, port := range svc.Spec.Ports {
			holders[portKey{protocol: port.Protocol, port: port.Port}] = key
		}
		var local map[string]bool
		if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
			local = endpointNodes(svc)
		}
		var ingress []corev1.LoadBalancerIngress
		vip := corev1.LoadBalancerIPModeVIP
		for _, node := range serving {
			if local != nil && !local[node.Name] {
				continue
			}
			for _, addr := range nodeAddresses(node, svc.Spec.IPFamilies) {
				ingress = append(ingress, corev1.LoadBalancerIngress{IP: addr, IPMode: &vip})
			}
		}
		out[key] = decision{ingress: ingress}
	}
	return out
}

// readyEndpointNodes lists the nodes of a Service's ready endpoints.
func readyEndpointNodes(slices []*discoveryv1.EndpointSlice) map[string]bool {
	nodes := map[string]bool{}
	for _, slice := range slices {
		for _, ep := range slice.Endpoints {
			if ep.NodeName != nil && (ep.Conditions.Ready == nil || *ep.Conditions.Ready) {
				nodes[*ep.NodeName] = true
			}
		}
	}
	return nodes
}

// sameIngress compares what a Service has with what it should have.
func sameIngress(a, b []corev1.LoadBalancerIngress) bool {
	return slices.EqualFunc(a, b, func(x, y corev1.LoadBalancerIngress) bool {
		return x.IP == y.IP && x.Hostname == y.Hostname
	})
}
