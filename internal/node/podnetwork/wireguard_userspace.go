package podnetwork

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/flannel-io/flannel/pkg/backend"
	"github.com/flannel-io/flannel/pkg/ip"
	"github.com/flannel-io/flannel/pkg/lease"
	"github.com/flannel-io/flannel/pkg/subnet"
	"github.com/vishvananda/netlink"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
	"golang.zx2c4.com/wireguard/tun"
	"golang.zx2c4.com/wireguard/wgctrl/wgtypes"
	"k8s.io/klog/v2"
)

// userspaceWireGuard is flannel's WireGuard backend for kernels without
// WireGuard: wireguard-go runs the device in this process over a TUN
// device, and the node's peers follow the subnet leases as flannel's
// kernel backend does (same lease format, same device name and port).
type userspaceWireGuard struct {
	subnets  subnet.Manager
	external *backend.ExternalInterface
	keyFile  string
}

// wireGuardLease is what a node announces in its lease: flannel's format.
type wireGuardLease struct {
	PublicKey string
	Port      uint16
}

// wireGuardOptions are the backend's settings in flannel's net-conf.json
// (flannel's names and defaults).
type wireGuardOptions struct {
	ListenPort                  int
	MTU                         int
	PersistentKeepaliveInterval int
	PSK                         string
}

func (b *userspaceWireGuard) RegisterNetwork(ctx context.Context, wg *sync.WaitGroup, cfg *subnet.Config) (backend.Network, error) {
	if cfg.EnableIPv6 {
		return nil, fmt.Errorf("userspace WireGuard carries IPv4 pod networks only; use a kernel with WireGuard for IPv6 pod traffic")
	}
	opts := wireGuardOptions{ListenPort: 51820, MTU: b.external.Iface.MTU}
	if len(cfg.Backend) > 0 {
		if err := json.Unmarshal(cfg.Backend, &opts); err != nil {
			return nil, fmt.Errorf("WireGuard backend settings: %w", err)
		}
	}
	key, err := nodeKey(b.keyFile)
	if err != nil {
		return nil, err
	}
	var psk string
	if opts.PSK != "" {
		k, err := wgtypes.ParseKey(opts.PSK)
		if err != nil {
			return nil, fmt.Errorf("WireGuard PSK: %w", err)
		}
		psk = uapiKey(k)
	}
	mtu := opts.MTU - wireGuardOverhead
	dev, err := startWireGuardDevice(key, opts.ListenPort, mtu)
	if err != nil {
		return nil, err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		dev.Close() // the TUN device goes with it
	}()

	data, err := json.Marshal(wireGuardLease{PublicKey: key.PublicKey().String(), Port: uint16(opts.ListenPort)})
	if err != nil {
		return nil, err
	}
	own, err := b.subnets.AcquireLease(ctx, &lease.LeaseAttrs{
		BackendType: "wireguard", PublicIP: ip.FromIP(b.external.ExtAddr), BackendData: data,
	})
	if err != nil {
		return nil, fmt.Errorf("WireGuard lease: %w", err)
	}
	if err := routeThroughDevice(own.Subnet.IP, cfg.Network); err != nil {
		return nil, err
	}
	return &wireGuardNetwork{
		subnets: b.subnets, dev: dev, lease: own, mtu: mtu, psk: psk,
		keepalive: opts.PersistentKeepaliveInterval, peers: map[string]*wireGuardPeer{},
	}, nil
}

// startWireGuardDevice makes the TUN device and runs WireGuard on it.
func startWireGuardDevice(key wgtypes.Key, port, mtu int) (*device.Device, error) {
	// A device of that name left by a kernel implementation (or a crash)
	// would make the TUN's creation fail.
	if stale, err := netlink.LinkByName(wireGuardDevice); err == nil {
		if err := netlink.LinkDel(stale); err != nil {
			return nil, fmt.Errorf("remove stale %s: %w", wireGuardDevice, err)
		}
	}
	tunDev, err := tun.CreateTUN(wireGuardDevice, mtu)
	if err != nil {
		return nil, fmt.Errorf("create TUN device %s: %w", wireGuardDevice, err)
	}
	logger := &device.Logger{
		Verbosef: device.DiscardLogf,
		Errorf: func(format string, args ...any) {
			klog.InfoS("WireGuard", "message", fmt.Sprintf(format, args...))
		},
	}
	dev := device.NewDevice(tunDev, conn.NewDefaultBind(), logger)
	if err := dev.IpcSet(fmt.Sprintf("private_key=%s\nlisten_port=%d\n", uapiKey(key), port)); err != nil {
		dev.Close()
		return nil, fmt.Errorf("configure WireGuard: %w", err)
	}
	if err := dev.Up(); err != nil {
		dev.Close()
		return nil, fmt.Errorf("start WireGuard: %w", err)
	}
	return dev, nil
}

// routeThroughDevice gives the device the node's first pod address and
// routes the whole pod network to it; the node's own subnet has a more
// specific route to its bridge.
func routeThroughDevice(own ip.IP4, network ip.IP4Net) error {
	link, err := netlink.LinkByName(wireGuardDevice)
	if err != nil {
		return fmt.Errorf("find %s: %w", wireGuardDevice, err)
	}
	if err := ip.EnsureV4AddressOnLink(ip.IP4Net{IP: own, PrefixLen: 32}, network, link); err != nil {
		return fmt.Errorf("address of %s: %w", wireGuardDevice, err)
	}
	if err := netlink.LinkSetUp(link); err != nil {
		return fmt.Errorf("bring %s up: %w", wireGuardDevice, err)
	}
	route := &netlink.Route{LinkIndex: link.Attrs().Index, Scope: netlink.SCOPE_LINK, Dst: network.ToIPNet()}
	if err := netlink.RouteReplace(route); err != nil {
		return fmt.Errorf("route %s through %s: %w", network, wireGuardDevice, err)
	}
	return nil
}

// wireGuardNetwork keeps one WireGuard peer per other node's lease.
type wireGuardNetwork struct {
	subnets   subnet.Manager
	dev       *device.Device
	lease     *lease.Lease
	mtu       int
	psk       string
	keepalive int
	// peers by public key (hex), read and written by Run only.
	peers map[string]*wireGuardPeer
}

// wireGuardPeer is another node as this one configured it.
type wireGuardPeer struct {
	subnet   string
	endpoint string
	since    time.Time
	warned   bool
}

// silentPeerAfter is how long a peer may go without a handshake before the
// node says pod traffic to it does not flow.
const silentPeerAfter = time.Minute

func (n *wireGuardNetwork) Lease() *lease.Lease { return n.lease }
func (n *wireGuardNetwork) MTU() int            { return n.mtu }

func (n *wireGuardNetwork) Run(ctx context.Context) {
	events := make(chan []lease.Event)
	go subnet.WatchLeases(ctx, n.subnets, n.lease, events)
	check := time.NewTicker(15 * time.Second)
	defer check.Stop()
	for {
		select {
		case batch, ok := <-events:
			if !ok {
				return
			}
			for _, event := range batch {
				n.apply(event)
			}
		case <-check.C:
			n.reportSilentPeers()
		case <-ctx.Done():
			return
		}
	}
}

// apply adds, updates or removes the peer of one other node's lease.
func (n *wireGuardNetwork) apply(event lease.Event) {
	l := event.Lease
	if l.Attrs.BackendType != "wireguard" {
		klog.InfoS("Ignoring a node's lease of another pod network backend", "subnet", l.Subnet.String(), "backend", l.Attrs.BackendType)
		return
	}
	var announced wireGuardLease
	if err := json.Unmarshal(l.Attrs.BackendData, &announced); err != nil {
		klog.ErrorS(err, "Unreadable WireGuard lease", "subnet", l.Subnet.String())
		return
	}
	key, err := wgtypes.ParseKey(announced.PublicKey)
	if err != nil {
		klog.ErrorS(err, "Unreadable WireGuard public key in lease", "subnet", l.Subnet.String())
		return
	}
	peer := uapiKey(key)
	var conf strings.Builder
	fmt.Fprintf(&conf, "public_key=%s\n", peer)
	switch event.Type {
	case lease.EventRemoved:
		conf.WriteString("remove=true\n")
		delete(n.peers, peer)
	case lease.EventAdded:
		endpoint := net.JoinHostPort(l.Attrs.PublicIP.String(), strconv.Itoa(int(announced.Port)))
		fmt.Fprintf(&conf, "endpoint=%s\nreplace_allowed_ips=true\nallowed_ip=%s\n", endpoint, l.Subnet.String())
		if n.psk != "" {
			fmt.Fprintf(&conf, "preshared_key=%s\n", n.psk)
		}
		if n.keepalive > 0 {
			fmt.Fprintf(&conf, "persistent_keepalive_interval=%d\n", n.keepalive)
		}
		n.peers[peer] = &wireGuardPeer{subnet: l.Subnet.String(), endpoint: endpoint, since: time.Now()}
	}
	if err := n.dev.IpcSet(conf.String()); err != nil {
		klog.ErrorS(err, "Configure WireGuard peer", "subnet", l.Subnet.String())
		return
	}
	klog.InfoS("WireGuard peer", "event", eventName(event.Type), "subnet", l.Subnet.String(), "publicIP", l.Attrs.PublicIP.String())
}

func eventName(t lease.EventType) string {
	if t == lease.EventRemoved {
		return "removed"
	}
	return "added"
}

// reportSilentPeers says, once per peer, when a node has never completed a
// handshake: the usual cause is that neither node can reach the other
// (both behind NAT), which WireGuard cannot bridge without a relay.
func (n *wireGuardNetwork) reportSilentPeers() {
	state, err := n.dev.IpcGet()
	if err != nil {
		return
	}
	handshakes := lastHandshakes(state)
	for key, peer := range n.peers {
		if peer.warned || time.Since(peer.since) < silentPeerAfter || handshakes[key] != 0 {
			continue
		}
		peer.warned = true
		klog.InfoS("No WireGuard handshake with a node: pod traffic to it does not flow. If both this node and that one are behind NAT, neither can reach the other and monokube does not relay between them; give one of them an address the other can reach",
			"subnet", peer.subnet, "endpoint", peer.endpoint, "after", silentPeerAfter)
	}
}

// lastHandshakes reads each peer's last handshake time (Unix seconds, 0 for
// never) from the device's state in WireGuard's configuration protocol.
func lastHandshakes(state string) map[string]int64 {
	out := map[string]int64{}
	var peer string
	scanner := bufio.NewScanner(strings.NewReader(state))
	for scanner.Scan() {
		key, value, _ := strings.Cut(scanner.Text(), "=")
		switch key {
		case "public_key":
			peer = value
			out[peer] = 0
		case "last_handshake_time_sec":
			if peer != "" {
				out[peer], _ = strconv.ParseInt(value, 10, 64)
			}
		}
	}
	return out
}
