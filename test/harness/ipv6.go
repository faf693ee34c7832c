package harness

import (
	"fmt"
	"net"
)

// enableIPv6 gives the network an IPv6 prefix of its own (a ULA made from
// its id): the bridge, as a router would, and the host leg, so tests reach
// IPv6 API servers. Once per network.
func (n *Network) enableIPv6() {
	if n.Subnet6 != "" {
		return
	}
	n.Subnet6 = fmt.Sprintf("fd%s:%s:", n.ID[:2], n.ID[2:])
	// nodad: the address is usable at once, not after duplicate detection.
	n.must("ip", "-n", n.bridge, "addr", "add", n.Subnet6+":1/64", "dev", "br0", "nodad")
	n.must("ip", "addr", "add", n.Subnet6+":fe/64", "dev", n.hostIf, "nodad")
}

// AddIPv6 gives the node (not started) an IPv6 address beside its IPv4
// one on the same interface, as a dual-stack machine has, and returns it.
func (n *Node) AddIPv6() string {
	n.t.Helper()
	network := n.network
	network.enableIPv6()
	// Canonical form, as Kubernetes writes it back: a network id with a
	// leading zero ("09a0") would otherwise never match ("9a0").
	n.IP6 = net.ParseIP(fmt.Sprintf("%s:%x", network.Subnet6, 0x10+n.index)).String()
	network.must("ip", "netns", "exec", n.NetNS, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0")
	network.must("ip", "-n", n.NetNS, "addr", "add", n.IP6+"/64", "dev", "eth0", "nodad")
	network.must("ip", "-n", n.NetNS, "-6", "route", "add", "default", "via", network.Subnet6+":1")
	return n.IP6
}
