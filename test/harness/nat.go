package harness

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// AddWorkerBehindNAT prepares a worker (not started, one of Workers) whose
// only way to the cluster is a NAT router, as a machine in a shop or a
// home lab behind its router: the node sits on a private segment of its
// own, the router masquerades what it sends to the cluster's network, and
// nothing on that network has a route to the node's address.
func (c *Cluster) AddWorkerBehindNAT() *Node {
	c.t.Helper()
	worker := c.AddWorker()
	n := c.Network
	index := c.next - 1
	router := n.bridge[:len(n.bridge)-2] + fmt.Sprintf("r%d", index)
	private := fmt.Sprintf("172.31.%d", index)
	lanIP := fmt.Sprintf("%s.%d", n.Subnet, 200+index)
	c.t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", router).CombinedOutput(); err != nil {
			c.t.Errorf("remove NAT router %s: %v: %s", router, err, out)
		}
	})

	// The router: one leg on the cluster's network, one on the node's
	// private segment.
	n.must("ip", "netns", "add", router)
	n.must("ip", "-n", router, "link", "set", "lo", "up")
	lanVeth := "mk" + n.ID + "l" + fmt.Sprint(index)
	n.must("ip", "link", "add", "lan", "netns", router, "type", "veth", "peer", "name", lanVeth, "netns", n.bridge)
	n.must("ip", "-n", n.bridge, "link", "set", lanVeth, "master", "br0", "up")
	n.must("ip", "-n", router, "addr", "add", lanIP+"/24", "dev", "lan")
	n.must("ip", "-n", router, "link", "set", "lan", "up")
	n.must("ip", "-n", router, "route", "add", "default", "via", n.Subnet+".1")
	n.must("ip", "netns", "exec", router, "sysctl", "-qw", "net.ipv4.ip_forward=1")

	// The node's link moves from the cluster's network to the router.
	n.must("ip", "-n", worker.NetNS, "link", "del", "eth0")
	n.must("ip", "link", "add", "eth0", "netns", worker.NetNS, "type", "veth", "peer", "name", "inside", "netns", router)
	n.must("ip", "-n", router, "addr", "add", private+".1/24", "dev", "inside")
	n.must("ip", "-n", router, "link", "set", "inside", "up")
	worker.IP = private + ".10"
	n.must("ip", "-n", worker.NetNS, "addr", "add", worker.IP+"/24", "dev", "eth0")
	n.must("ip", "-n", worker.NetNS, "link", "set", "eth0", "up")
	n.must("ip", "-n", worker.NetNS, "route", "add", "default", "via", private+".1")
	worker.Address = worker.IP
	if err := masquerade(router, "lan"); err != nil {
		c.t.Fatal(err)
	}
	return worker
}

// masquerade makes the router in namespace ns rewrite the source of what
// leaves by out to its own address (nftables; the machine may have no nft
// or iptables command).
func masquerade(ns, out string) error {
	handle, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return err
	}
	defer handle.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(handle.Fd())))
	if err != nil {
		return fmt.Errorf("nftables in %s: %w", ns, err)
	}
	table := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "nat"})
	chain := conn.AddChain(&nftables.Chain{
		Name: "postrouting", Table: table, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource,
	})
	name := make([]byte, unix.IFNAMSIZ)
	copy(name, out)
	conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
		&expr.Masq{},
	}})
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("masquerade in %s: %w", ns, err)
	}
	return nil
}
