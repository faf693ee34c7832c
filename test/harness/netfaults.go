package harness

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Faults on the links between nodes, for tests that check what clients
// see while they last. The kernel here has no netem (sch_netem is not
// built), so there is no fixed delay: a slow link is a rate limit (tbf)
// whose queue delays packets when the link is busy, and loss is an
// nftables rule that drops a random share of packets.

// Cut partitions a from b in both directions: each gets a blackhole route
// to the other's address, so packets (also of established connections)
// vanish without an error, as on a broken link. Cuts with different
// layers are routes of their own (the layer is the route's metric), so
// two faults can cut the same pair and heal it independently.
func Cut(a, b *Node, layer int) error {
	if err := ipRoute(a, "replace", b.IP, layer); err != nil {
		return err
	}
	return ipRoute(b, "replace", a.IP, layer)
}

// Heal removes what Cut added on that layer.
func Heal(a, b *Node, layer int) error {
	return errors.Join(ipRoute(a, "del", b.IP, layer), ipRoute(b, "del", a.IP, layer))
}

func ipRoute(n *Node, verb, ip string, layer int) error {
	out, err := exec.Command("ip", "-n", n.NetNS, "route", verb, "blackhole", ip+"/32", "metric", fmt.Sprint(layer)).CombinedOutput()
	if err != nil && !(verb == "del" && strings.Contains(string(out), "No such process")) {
		return fmt.Errorf("ip -n %s route %s blackhole %s: %v: %s", n.NetNS, verb, ip, err, out)
	}
	return nil
}

// SlowLink limits what n sends on its link to rate (tc's syntax, "1mbit"),
// queueing up to latency ("300ms") before dropping; "" removes the limit.
func (n *Node) SlowLink(rate, latency string) error {
	args := []string{"-n", n.NetNS, "qdisc", "del", "dev", "eth0", "root"}
	if rate != "" {
		args = []string{"-n", n.NetNS, "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate, "burst", "32kbit", "latency", latency}
	}
	if out, err := exec.Command("tc", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("tc %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

// lossTable is the nftables table Lossy adds in a node's namespace.
const lossTable = "monokube-test-loss"

// Lossy drops one packet in every `in` that n sends or receives, at
// random; 0 removes the rule.
func (n *Node) Lossy(in uint32) error {
	ns, err := os.Open("/run/netns/" + n.NetNS)
	if err != nil {
		return err
	}
	defer ns.Close()
	conn, err := nftables.New(nftables.WithNetNSFd(int(ns.Fd())))
	if err != nil {
		return fmt.Errorf("nftables in %s: %w", n.NetNS, err)
	}
	table := &nftables.Table{Family: nftables.TableFamilyINet, Name: lossTable}
	if in == 0 {
		conn.DelTable(table)
		if err := conn.Flush(); err != nil && !errors.Is(err, syscall.ENOENT) {
			return fmt.Errorf("remove packet loss on %s: %w", n.Name, err)
		}
		return nil
	}
	conn.AddTable(table)
	for _, hook := range []*nftables.ChainHook{nftables.ChainHookInput, nftables.ChainHookOutput} {
		chain := conn.AddChain(&nftables.Chain{Name: fmt.Sprintf("loss-%d", *hook), Table: table,
			Type: nftables.ChainTypeFilter, Hooknum: hook, Priority: nftables.ChainPriorityFilter})
		// numgen random mod in == 0 → drop; an equality needs no byte order.
		conn.AddRule(&nftables.Rule{Table: table, Chain: chain, Exprs: []expr.Any{
			&expr.Numgen{Register: 1, Modulus: in, Type: unix.NFT_NG_RANDOM},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0, 0, 0, 0}},
			&expr.Verdict{Kind: expr.VerdictDrop},
		}})
	}
	if err := conn.Flush(); err != nil {
		return fmt.Errorf("add packet loss on %s: %w", n.Name, err)
	}
	return nil
}
