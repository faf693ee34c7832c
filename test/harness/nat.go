package harness

import (
	"fmt"
	"os"
	"os/exec"

	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
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
	if err := countTunnels(router); err != nil {
		c.t.Fatal(err)
	}
	worker.Router = router
	return worker
}

// Pod traffic between nodes, by the UDP port it is sent to.
const (
	WireGuardPort = 51820
	VXLANPort     = 8472
)

// countTunnels counts, in the router's forward path, the UDP packets sent
// to WireGuard's and VXLAN's ports, so a test sees which one carried pod
// traffic on the wire.
func countTunnels(ns string) error {
	conn, done, err := nftablesIn(ns)
	if err != nil {
		return err
	}
	defer done()
	table := conn.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "count"})
	accept := nftables.ChainPolicyAccept
	chain := conn.AddChain(&nftables.Chain{
		Name: "forward", Table: table, Type: nftables.ChainTypeFilter,
		Hooknum: nftables.ChainHookForward, Priority: nftables.ChainPriorityFilter, Policy: &accept,
	})
	for _, port := range []uint16{WireGuardPort, VXLANPort} {
		conn.AddRule(&nftables.Rule{Table: table, Chain: chain, UserData: []byte(fmt.Sprint(port)), Exprs: []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_UDP}},
			&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: binaryutil.BigEndian.PutUint16(port)},
			&expr.Counter{},
		}})
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("counters in %s: %w", ns, err)
	}
	return nil
}

// RouterPackets is how many UDP packets to port the NAT router in front of
// worker has forwarded (either way).
func RouterPackets(t testing.TB, worker *Node, port uint16) uint64 {
	t.Helper()
	conn, done, err := nftablesIn(worker.Router)
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	table := &nftables.Table{Family: nftables.TableFamilyIPv4, Name: "count"}
	rules, err := conn.GetRules(table, &nftables.Chain{Name: "forward", Table: table})
	if err != nil {
		t.Fatalf("read counters in %s: %v", worker.Router, err)
	}
	for _, rule := range rules {
		if string(rule.UserData) != fmt.Sprint(port) {
			continue
		}
		for _, e := range rule.Exprs {
			if counter, ok := e.(*expr.Counter); ok {
				return counter.Packets
			}
		}
	}
	t.Fatalf("no counter for UDP port %d in %s", port, worker.Router)
	return 0
}

// nftablesIn opens an nftables connection in namespace ns; done closes it.
func nftablesIn(ns string) (*nftables.Conn, func(), error) {
	handle, err := os.Open("/run/netns/" + ns)
	if err != nil {
		return nil, nil, err
	}
	conn, err := nftables.New(nftables.WithNetNSFd(int(handle.Fd())))
	if err != nil {
		handle.Close()
		return nil, nil, fmt.Errorf("nftables in %s: %w", ns, err)
	}
	return conn, func() { conn.CloseLasting(); handle.Close() }, nil
}

// masquerade makes the router in namespace ns rewrite the source of what
// leaves by out to its own address (nftables; the machine may have no nft
// or iptables command).
func masquerade(ns, out string) error {
	conn, done, err := nftablesIn(ns)
	if err != nil {
		return err
	}
	defer done()
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
