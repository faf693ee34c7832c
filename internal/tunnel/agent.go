package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/rancher/remotedialer"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/monokube/monokube/internal/component"
	"github.com/monokube/monokube/internal/config"
	"github.com/monokube/monokube/internal/kubeclient"
)

// Agent keeps this node's tunnel open to every API server, and dials for
// the servers what the mode lets them reach: this machine's own addresses
// (the kubelet), its pods, and (cluster mode) Service IPs.
type Agent struct {
	NodeName string
	// Kubeconfig is the kubelet's: the node's credentials (read again at
	// each connection, so a rotated certificate is used) and the CA.
	Kubeconfig string
	// Servers returns every API server (host:port) to keep a tunnel to.
	Servers     func() []string
	Mode        string
	ServiceCIDR string

	podCIDRs podCIDRs
	services []netip.Prefix
	stop     context.CancelFunc
	done     sync.WaitGroup
}

var _ component.Component = (*Agent)(nil)

func (a *Agent) Name() string { return "tunnel" }

func (a *Agent) Init(context.Context) error {
	if a.Mode == config.EgressCluster {
		services, err := config.Prefixes(a.ServiceCIDR)
		if err != nil {
			return fmt.Errorf("service CIDR: %w", err)
		}
		a.services = services
	}
	return nil
}

func (a *Agent) Start(ctx context.Context) error {
	client, err := kubeclient.New(a.Kubeconfig, kubeclient.WithTimeout(5*time.Second))
	if err != nil {
		return err
	}
	a.podCIDRs = podCIDRs{get: func(ctx context.Context) ([]string, error) {
		node, err := client.CoreV1().Nodes().Get(ctx, a.NodeName, metav1.GetOptions{})
		if err != nil {
			return nil, err
		}
		return node.Spec.PodCIDRs, nil
	}}
	ctx, a.stop = context.WithCancel(ctx)
	a.done.Add(1)
	go func() {
		defer a.done.Done()
		a.follow(ctx)
	}()
	return nil
}

// Ready returns at once: nothing on the node waits for its tunnels.
func (a *Agent) Ready(context.Context) error { return nil }

func (a *Agent) Stop() error {
	if a.stop != nil {
		a.stop()
		a.done.Wait()
	}
	return nil
}

// follow keeps one connection loop per server in Servers.
func (a *Agent) follow(ctx context.Context) {
	running := map[string]context.CancelFunc{}
	var loops sync.WaitGroup
	defer loops.Wait()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		servers := a.Servers()
		for server, cancel := range running {
			if !slices.Contains(servers, server) {
				cancel()
				delete(running, server)
			}
		}
		for _, server := range servers {
			if _, ok := running[server]; ok {
				continue
			}
			loopCtx, cancel := context.WithCancel(ctx)
			running[server] = cancel
			loops.Add(1)
			go func() {
				defer loops.Done()
				a.keep(loopCtx, server)
			}()
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// keep connects to one server again and again until ctx ends: at once
// after a tunnel that lasted, else after a short growing pause, so a
// restarted server has its tunnel back within seconds.
func (a *Agent) keep(ctx context.Context, server string) {
	url := "wss://" + server + ConnectPath
	pause := time.Second
	for ctx.Err() == nil {
		began := time.Now()
		err := a.connect(ctx, url)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > 10*time.Second {
			pause = time.Second
		}
		klog.InfoS("Tunnel to the API server down; connecting again", "server", server, "in", pause, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, 5*time.Second)
	}
}

func (a *Agent) connect(ctx context.Context, url string) error {
	tlsConfig, err := a.tlsConfig()
	if err != nil {
		return err
	}
	dialer := &websocket.Dialer{TLSClientConfig: tlsConfig, HandshakeTimeout: 10 * time.Second}
	headers := http.Header{NodeHeader: []string{a.NodeName}}
	onConnect := func(context.Context, *remotedialer.Session) error {
		klog.InfoS("Tunnel to the API server open", "url", url)
		return nil
	}
	err = remotedialer.ConnectToProxyWithDialer(ctx, url, headers, a.allowed, dialer, nil, onConnect)
	if err == nil {
		err = errors.New("closed")
	}
	return err
}

func (a *Agent) tlsConfig() (*tls.Config, error) {
	restConfig, err := clientcmd.BuildConfigFromFlags("", a.Kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("tunnel credentials: %w", err)
	}
	tlsConfig, err := rest.TLSConfigFor(restConfig)
	if err != nil {
		return nil, fmt.Errorf("tunnel credentials: %w", err)
	}
	return tlsConfig, nil
}

// allowed says whether a server may have this node dial address: only what
// the mode sends through tunnels, never this machine's loopback.
func (a *Agent) allowed(proto, address string) bool {
	if proto != "tcp" {
		return false
	}
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	if err != nil || ip.IsLoopback() || ip.IsUnspecified() {
		return false
	}
	ip = ip.Unmap()
	switch {
	case ownAddress(ip):
		return true
	case a.Mode == config.EgressAgent:
		return false
	case a.podCIDRs.contain(ip):
		return true
	}
	return a.Mode == config.EgressCluster && config.InPrefixes(a.services, ip)
}

func ownAddress(ip netip.Addr) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, addr := range addrs {
		if prefix, err := netip.ParsePrefix(addr.String()); err == nil && prefix.Addr().Unmap() == ip {
			return true
		}
	}
	return false
}

// podCIDRs are this node's, read from its Node object once it has them.
type podCIDRs struct {
	get func(context.Context) ([]string, error)

	mu       sync.Mutex
	prefixes []netip.Prefix
	checked  time.Time
}

func (p *podCIDRs) contain(ip netip.Addr) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	// A node gets its pod CIDRs once, after it registers: until then,
	// ask again at most every 5 s.
	if len(p.prefixes) == 0 && time.Since(p.checked) > 5*time.Second {
		p.checked = time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if cidrs, err := p.get(ctx); err == nil {
			for _, raw := range cidrs {
				if prefix, err := netip.ParsePrefix(raw); err == nil {
					p.prefixes = append(p.prefixes, prefix.Masked())
				}
			}
		}
	}
	return slices.ContainsFunc(p.prefixes, func(prefix netip.Prefix) bool { return prefix.Contains(ip) })
}
