package node

import (
	"fmt"
	"net"
	"strings"

	"github.com/monokube/monokube/internal/config"
)

// Addresses completes and orders a node's IPs for the cluster's families,
// primary first, from those given (--node-ip, or the one detected). A
// dual-stack cluster needs one of each family: the missing one is taken
// from the interface that holds the first given address, as a machine
// with one NIC has both there.
func Addresses(network config.NetworkSpec, given []string) ([]string, error) {
	byFamily := map[string]string{}
	for _, raw := range given {
		ip := net.ParseIP(raw)
		if ip == nil {
			return nil, fmt.Errorf("node IP %q is not an IP address", raw)
		}
		fam := config.IPFamily(ip)
		if config.CIDRFor(network.PodCIDR, fam) == "" {
			return nil, fmt.Errorf("node IP %s is %s, but the cluster's pod network (spec.network.podCIDR %s) has no %s range: give a node IP of its family (--node-ip)", raw, fam, network.PodCIDR, fam)
		}
		if other, twice := byFamily[fam]; twice {
			return nil, fmt.Errorf("node IPs %s and %s are both %s: give at most one per family", other, raw, fam)
		}
		byFamily[fam] = ip.String()
	}
	if len(given) == 0 {
		return nil, fmt.Errorf("no node IP")
	}
	var out []string
	for _, fam := range network.IPFamilies() {
		ip, ok := byFamily[fam]
		if !ok {
			found, iface, err := sameInterface(given[0], fam)
			if err != nil {
				return nil, err
			}
			if found == "" {
				return nil, fmt.Errorf("the cluster is dual-stack (spec.network.podCIDR %s) but this node has no %s address on %s, where %s is: give one with a second --node-ip", network.PodCIDR, fam, iface, given[0])
			}
			ip = found
		}
		out = append(out, ip)
	}
	return out, nil
}

// sameInterface finds a global address of the family on the interface that
// holds ip; it returns the interface's name too.
func sameInterface(ip, fam string) (string, string, error) {
	want := net.ParseIP(ip)
	interfaces, err := net.Interfaces()
	if err != nil {
		return "", "", fmt.Errorf("list interfaces: %w", err)
	}
	for _, iface := range interfaces {
		addrs, err := iface.Addrs()
		if err != nil {
			continue
		}
		var holds bool
		var candidate string
		for _, addr := range addrs {
			ipNet, ok := addr.(*net.IPNet)
			if !ok {
				continue
			}
			if ipNet.IP.Equal(want) {
				holds = true
			}
			if candidate == "" && ipNet.IP.IsGlobalUnicast() && config.IPFamily(ipNet.IP) == fam {
				candidate = ipNet.IP.String()
			}
		}
		if holds {
			return candidate, iface.Name, nil
		}
	}
	return "", "no interface", fmt.Errorf("no interface holds the node IP %s (set --node-ip to an address of this machine)", ip)
}

// joinIPs is the kubelet's --node-ip form of a node's addresses.
func joinIPs(ips []string) string { return strings.Join(ips, ",") }
