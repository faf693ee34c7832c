// Package loadbalancer lets a worker node outlive the API server it joined
// through. kubelet, kube-proxy and flannel run inside the worker process and
// each reads one kubeconfig with one server URL; pointing all of them at a
// loopback TCP proxy that knows every API server turns the loss of a control
// plane node into a reconnect, instead of rewritten kubeconfigs and restarted
// components. TLS passes through untouched, so the clients still verify the
// API servers' own certificates (which carry 127.0.0.1 and localhost).
package loadbalancer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/klog/v2"
)

const (
	// dialTimeout bounds each attempt to reach an API server: a dead server
	// costs a new connection this much before the next one is tried.
	dialTimeout = 3 * time.Second
	// healthInterval is how often failed servers (and the current one) are
	// probed between connections.
	healthInterval = 5 * time.Second
	// refusedGrace is how long a server that refuses new connections keeps
	// the ones it has. A refusal comes from a live kernel: either the
	// server is shutting down and finishing its requests (cutting them would
	// fail requests it was about to answer) or its process is gone and the
	// kernel has reset them already. Past the grace they are cut anyway.
	refusedGrace = 10 * time.Second
)

// keepAlive makes both sides of a proxied connection notice a peer that
// vanished without a FIN (a server killed in another network namespace, a
// powered-off node) in about 25 s rather than the kernel's two hours.
var keepAlive = net.KeepAliveConfig{Enable: true, Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 3}

// LoadBalancer forwards TCP connections from a loopback listener to the API servers.
type LoadBalancer struct {
	listener net.Listener
	dialer   net.Dialer
	// fallback is the list given to New, which WatchServers goes back to
	// while the cluster publishes no API server.
	fallback []string
	// healthInterval and refusedGrace are fields so tests can shorten them
	// before Start.
	healthInterval time.Duration
	refusedGrace   time.Duration

	mu      sync.Mutex
	servers []string
	// current is the server the last connection reached; new connections try
	// it first so clients stay on one server while it is up. Empty until a
	// connection succeeds, and again after it fails or is removed.
	current string
	// unhealthy holds servers whose last dial failed: tried last.
	unhealthy map[string]bool
	// refusedSince is when a server began refusing connections, for
	// refusedGrace.
	refusedSince map[string]time.Time
	// conns are the open proxied connections per server, so they can be cut
	// when their server fails or leaves the list.
	conns map[string]map[*proxied]struct{}
	// handling counts accepted connections from Accept until they end,
	// including those still being dialled through (not yet in conns).
	handling atomic.Int64
	started  bool
	stopped  bool
	cancel   context.CancelFunc

	wg       sync.WaitGroup
	stopOnce sync.Once
	stopErr  error
}

// New listens on listenAddress ("127.0.0.1:0" picks a free port) and will
// forward to servers, each host:port. It listens at once so that Address
// and URL can go into kubeconfigs before Start.
func New(listenAddress string, servers []string) (*LoadBalancer, error) {
	list, err := normalize(servers)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errors.New("no API server addresses to balance")
	}
	listenConfig := net.ListenConfig{KeepAliveConfig: keepAlive}
	listener, err := listenConfig.Listen(context.Background(), "tcp", listenAddress)
	if err != nil {
		return nil, fmt.Errorf("API load balancer: listen on %s: %w", listenAddress, err)
	}
	return newBalancer(listener, list), nil
}

// NewFromListener balances connections accepted on listener, one that
// another balancer process handed over (see Standalone).
func NewFromListener(listener net.Listener, servers []string) (*LoadBalancer, error) {
	list, err := normalize(servers)
	if err != nil {
		return nil, err
	}
	if len(list) == 0 {
		return nil, errors.New("no API server addresses to balance")
	}
	return newBalancer(listener, list), nil
}

func newBalancer(listener net.Listener, servers []string) *LoadBalancer {
	return &LoadBalancer{
		listener:       listener,
		dialer:         net.Dialer{Timeout: dialTimeout, KeepAliveConfig: keepAlive},
		fallback:       servers,
		healthInterval: healthInterval,
		refusedGrace:   refusedGrace,
		servers:        slices.Clone(servers),
		unhealthy:      map[string]bool{},
		refusedSince:   map[string]time.Time{},
		conns:          map[string]map[*proxied]struct{}{},
	}
}

// ListenerFile is a duplicate of the listening socket, to hand to the
// balancer process that takes over from this one: both accept on the same
// socket until this one drains, so no connection is ever refused.
func (lb *LoadBalancer) ListenerFile() (*os.File, error) {
	tcp, ok := lb.listener.(*net.TCPListener)
	if !ok {
		return nil, fmt.Errorf("API load balancer: listener %T is not TCP", lb.listener)
	}
	return tcp.File()
}

// Drain stops accepting (the socket stays open in whoever holds a
// duplicate of it), waits up to timeout for the proxied connections to end
// on their own, then stops.
func (lb *LoadBalancer) Drain(timeout time.Duration) error {
	if err := lb.listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("API load balancer: close listener: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for lb.handling.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	klog.InfoS("API load balancer: drained", "connectionsCut", lb.handling.Load())
	return lb.Stop()
}

// Address is the host:port the balancer listens on.
func (lb *LoadBalancer) Address() string {
	return lb.listener.Addr().String()
}

// URL is the server URL for the kubeconfigs of the node's components.
func (lb *LoadBalancer) URL() string {
	return "https://" + lb.Address()
}

// Servers is the current list of API servers, in order.
func (lb *LoadBalancer) Servers() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	return slices.Clone(lb.servers)
}

// Fallback is the list given to New.
func (lb *LoadBalancer) Fallback() []string { return lb.fallback }

// SetServers replaces the list of API servers. Duplicates and malformed
// entries are dropped. An empty list is ignored: a balancer with no server
// can only refuse, while a stale list may still hold a live one. Connections
// to servers no longer listed are closed so their clients reconnect to one
// that is.
func (lb *LoadBalancer) SetServers(servers []string) {
	list, invalid := normalizeLenient(servers)
	for _, err := range invalid {
		klog.InfoS("API load balancer: ignoring invalid server address", "err", err)
	}
	if len(list) == 0 {
		klog.InfoS("API load balancer: ignoring empty server list", "servers", lb.Servers())
		return
	}

	lb.mu.Lock()
	if slices.Equal(list, lb.servers) {
		lb.mu.Unlock()
		return
	}
	previous := lb.servers
	lb.servers = list
	var cut []*proxied
	for _, server := range previous {
		if slices.Contains(list, server) {
			continue
		}
		delete(lb.unhealthy, server)
		delete(lb.refusedSince, server)
		if lb.current == server {
			lb.current = ""
		}
		cut = append(cut, lb.takeConns(server)...)
	}
	lb.mu.Unlock()

	for _, p := range cut {
		p.close()
	}
	klog.InfoS("API load balancer: servers changed", "servers", list, "previous", previous, "closedConnections", len(cut))
}

// Start accepts connections and probes failed servers in the background
// until ctx ends or Stop is called.
func (lb *LoadBalancer) Start(ctx context.Context) error {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	switch {
	case lb.stopped:
		return errors.New("API load balancer: already stopped")
	case lb.started:
		return errors.New("API load balancer: already started")
	}
	lb.started = true
	ctx, lb.cancel = context.WithCancel(ctx)
	lb.wg.Add(2)
	go func() {
		defer lb.wg.Done()
		lb.serve(ctx)
	}()
	go func() {
		defer lb.wg.Done()
		lb.checkHealth(ctx)
	}()
	// The listener does not watch ctx itself; Stop is what unblocks Accept.
	context.AfterFunc(ctx, func() { _ = lb.Stop() })
	klog.InfoS("API load balancer: listening", "address", lb.Address(), "servers", lb.servers)
	return nil
}

// Stop closes the listener and every proxied connection, and returns once
// the background goroutines have ended. Calling it again is harmless.
func (lb *LoadBalancer) Stop() error {
	lb.stopOnce.Do(func() {
		lb.mu.Lock()
		lb.stopped = true
		cancel := lb.cancel
		var open []*proxied
		for server := range lb.conns {
			open = append(open, lb.takeConns(server)...)
		}
		lb.mu.Unlock()

		if cancel != nil {
			cancel()
		}
		if err := lb.listener.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			lb.stopErr = fmt.Errorf("API load balancer: close listener: %w", err)
		}
		for _, p := range open {
			p.close()
		}
		lb.wg.Wait()
		klog.InfoS("API load balancer: stopped", "address", lb.Address())
	})
	return lb.stopErr
}

// normalize checks and dedupes servers, failing on the first malformed one.
func normalize(servers []string) ([]string, error) {
	list, invalid := normalizeLenient(servers)
	if len(invalid) > 0 {
		return nil, invalid[0]
	}
	return list, nil
}

// normalizeLenient dedupes servers (keeping first occurrences, so order is
// preserved) and sets malformed ones aside.
func normalizeLenient(servers []string) (list []string, invalid []error) {
	for _, server := range servers {
		server = strings.TrimSpace(server)
		host, port, err := net.SplitHostPort(server)
		if err == nil && (host == "" || port == "") {
			err = errors.New("empty host or port")
		}
		if err != nil {
			invalid = append(invalid, fmt.Errorf("API server address %q, want host:port: %w", server, err))
			continue
		}
		if !slices.Contains(list, server) {
			list = append(list, server)
		}
	}
	return list, invalid
}
