package config

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
)

// CIDRs splits a range setting: one CIDR, or an IPv4 and an IPv6 CIDR
// separated by a comma (dual-stack, the first being the primary family).
func CIDRs(list string) []string {
	var out []string
	for _, part := range strings.Split(list, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// IPFamilies are the pod network's address families, primary first:
// "IPv4", "IPv6" or both.
func (n NetworkSpec) IPFamilies() []string {
	var families []string
	for _, cidr := range CIDRs(n.PodCIDR) {
		if prefix, err := netip.ParsePrefix(cidr); err == nil {
			families = append(families, family(prefix.Addr()))
		}
	}
	return families
}

// DualStack reports whether the cluster has ranges of both families.
func (n NetworkSpec) DualStack() bool { return len(n.IPFamilies()) == 2 }

// CIDRFor is the range of list in the family ("IPv4" or "IPv6"), or "".
func CIDRFor(list, fam string) string {
	for _, cidr := range CIDRs(list) {
		if prefix, err := netip.ParsePrefix(cidr); err == nil && family(prefix.Addr()) == fam {
			return cidr
		}
	}
	return ""
}

// IPFamily is "IPv4" or "IPv6" for an address.
func IPFamily(ip net.IP) string {
	if ip.To4() != nil {
		return "IPv4"
	}
	return "IPv6"
}

func family(addr netip.Addr) string {
	if addr.Unmap().Is4() {
		return "IPv4"
	}
	return "IPv6"
}

// defaultClusterDNS is the DNS Service's address when the config names
// none: the tenth address of the (primary) service range, as k3s's
// 10.43.0.10.
func defaultClusterDNS(serviceCIDR string) (string, bool) {
	ranges := CIDRs(serviceCIDR)
	if len(ranges) == 0 {
		return "", false
	}
	prefix, err := netip.ParsePrefix(ranges[0])
	if err != nil {
		return "", false
	}
	addr := prefix.Masked().Addr()
	for range 10 {
		addr = addr.Next()
	}
	return addr.String(), prefix.Contains(addr)
}

// ranges checks a range setting (one CIDR, or one per family) and returns
// its prefixes.
func (v *validator) ranges(path, value string) []netip.Prefix {
	parts := CIDRs(value)
	if len(parts) == 0 || len(parts) > 2 {
		v.add(path, "must be a CIDR like 10.42.0.0/16, or an IPv4 and an IPv6 CIDR separated by a comma, got %q", value)
		return nil
	}
	var out []netip.Prefix
	for _, part := range parts {
		prefix := v.cidr(path, part)
		if !prefix.IsValid() {
			return nil
		}
		out = append(out, prefix)
	}
	if len(out) == 2 && family(out[0].Addr()) == family(out[1].Addr()) {
		v.add(path, "two ranges must be one IPv4 and one IPv6 (dual-stack), got two %s ranges in %q", family(out[0].Addr()), value)
		return nil
	}
	return out
}

// families lists the prefixes' families in order.
func families(prefixes []netip.Prefix) string {
	var names []string
	for _, p := range prefixes {
		names = append(names, family(p.Addr()))
	}
	return strings.Join(names, ",")
}

// sameFamilies insists that services have the pods' families in the
// pods' order: a pod of a family without Services (or the reverse) could
// not be reached the way Kubernetes promises.
func (v *validator) sameFamilies(pods, services []netip.Prefix) {
	if len(pods) == 0 || len(services) == 0 || families(pods) == families(services) {
		return
	}
	// Name the range the user wrote (the other may be the default).
	path, other, mine, theirs := "spec.network.serviceCIDR", "spec.network.podCIDR", services, pods
	if _, written := v.lines["spec.network.serviceCIDR"]; !written && v.lines["spec.network.podCIDR"] > 0 {
		path, other, mine, theirs = other, path, pods, services
	}
	v.add(path, "is %s but %s is %s: both must have the same families in the same order (dual-stack: IPv4,IPv6 or IPv6,IPv4 in both)",
		families(mine), other, families(theirs))
}

// rangeSizes checks what the controller-manager and API server accept:
// nodes get a /24 (IPv4) or /64 (IPv6) of the pod range, at most 2^16 of
// them; a service range holds at most 2^20 addresses.
func (v *validator) rangeSizes(pods, services []netip.Prefix) {
	for _, p := range pods {
		node := 24
		if !p.Addr().Is4() {
			node = 64
		}
		if p.Bits() >= node || node-p.Bits() > 16 {
			v.add("spec.network.podCIDR", "%s: nodes get a /%d each, so the range must be between /%d and /%d", p, node, node-16, node-1)
		}
	}
	for _, s := range services {
		if s.Addr().BitLen()-s.Bits() > 20 {
			v.add("spec.network.serviceCIDR", "%s is too large: the API server allows at most a /12 for IPv4 and a /108 for IPv6", s)
		}
	}
}

// overlapping reports a pod range that overlaps a service range.
func (v *validator) overlapping(pods, services []netip.Prefix) {
	for _, p := range pods {
		for _, s := range services {
			if !p.Overlaps(s) {
				continue
			}
			if _, written := v.lines["spec.network.serviceCIDR"]; !written && v.lines["spec.network.podCIDR"] > 0 {
				v.add("spec.network.podCIDR", "%s overlaps spec.network.serviceCIDR %s (the default)", p, s)
			} else {
				v.add("spec.network.serviceCIDR", "%s overlaps spec.network.podCIDR %s", s, p)
			}
		}
	}
}

// FirstServiceIPs are the "kubernetes" Service's possible addresses: the
// first host address of each service range.
func FirstServiceIPs(serviceCIDR string) ([]net.IP, error) {
	var out []net.IP
	for _, cidr := range CIDRs(serviceCIDR) {
		ip, err := FirstServiceIP(cidr)
		if err != nil {
			return nil, err
		}
		out = append(out, ip)
	}
	return out, nil
}

// describe is a range list for messages.
func describe(prefixes []netip.Prefix) string {
	var parts []string
	for _, p := range prefixes {
		parts = append(parts, p.String())
	}
	return strings.Join(parts, ",")
}

// Prefixes parses a range setting into its prefixes.
func Prefixes(list string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, cidr := range CIDRs(list) {
		prefix, err := netip.ParsePrefix(cidr)
		if err != nil {
			return nil, fmt.Errorf("range %q: %w", cidr, err)
		}
		out = append(out, prefix.Masked())
	}
	return out, nil
}

// InPrefixes reports whether ip is in one of prefixes.
func InPrefixes(prefixes []netip.Prefix, ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
