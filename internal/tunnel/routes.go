package tunnel

import (
	"net"
	"net/netip"
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// routes says which node an address the API server dials belongs to: one of
// its own addresses, or an address in its pod CIDRs. It follows the Node
// objects (an informer calls set and remove).
type routes struct {
	mu sync.RWMutex
	// addresses maps a node address to its node.
	addresses map[netip.Addr]string
	// pods are every node's pod CIDRs.
	pods map[string][]netip.Prefix
	// own are each node's addresses, to remove them when they change.
	own map[string][]netip.Addr
}

func newRoutes() *routes {
	return &routes{addresses: map[netip.Addr]string{}, pods: map[string][]netip.Prefix{}, own: map[string][]netip.Addr{}}
}

func (r *routes) set(node *corev1.Node) {
	var addrs []netip.Addr
	for _, a := range node.Status.Addresses {
		if a.Type != corev1.NodeInternalIP && a.Type != corev1.NodeExternalIP {
			continue
		}
		if ip, err := netip.ParseAddr(a.Address); err == nil {
			addrs = append(addrs, ip.Unmap())
		}
	}
	var cidrs []netip.Prefix
	for _, raw := range node.Spec.PodCIDRs {
		if prefix, err := netip.ParsePrefix(raw); err == nil {
			cidrs = append(cidrs, prefix.Masked())
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget(node.Name)
	for _, ip := range addrs {
		r.addresses[ip] = node.Name
	}
	r.own[node.Name] = addrs
	r.pods[node.Name] = cidrs
}

func (r *routes) remove(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.forget(name)
}

func (r *routes) forget(name string) {
	for _, ip := range r.own[name] {
		if r.addresses[ip] == name {
			delete(r.addresses, ip)
		}
	}
	delete(r.own, name)
	delete(r.pods, name)
}

// nodeOf returns the node whose address ip is, or (withPods) in whose pod
// CIDRs it lies; "" if none.
func (r *routes) nodeOf(ip net.IP, withPods bool) string {
	addr, ok := netip.AddrFromSlice(ip)
	if !ok {
		return ""
	}
	addr = addr.Unmap()
	r.mu.RLock()
	defer r.mu.RUnlock()
	if node, found := r.addresses[addr]; found {
		return node
	}
	if !withPods {
		return ""
	}
	for node, cidrs := range r.pods {
		for _, cidr := range cidrs {
			if cidr.Contains(addr) {
				return node
			}
		}
	}
	return ""
}
