package loadbalancer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"syscall"
	"time"

	"k8s.io/klog/v2"
)

// candidates is the order in which to try servers for a new connection: the
// current one, so all clients keep sharing one server while it is up; then
// the healthy ones in list order; then the failed ones, still tried because
// a failure mark can be stale and trying beats refusing the client.
func (lb *LoadBalancer) candidates() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	order := make([]string, 0, len(lb.servers))
	if lb.current != "" {
		order = append(order, lb.current)
	}
	for _, server := range lb.servers {
		if server != lb.current && !lb.unhealthy[server] {
			order = append(order, server)
		}
	}
	for _, server := range lb.servers {
		if server != lb.current && lb.unhealthy[server] {
			order = append(order, server)
		}
	}
	return order
}

// dialServer connects to the first candidate that answers, marking the ones
// that do not as failed on the way.
func (lb *LoadBalancer) dialServer(ctx context.Context) (net.Conn, string, error) {
	var errs []error
	for _, server := range lb.candidates() {
		conn, err := lb.dialer.DialContext(ctx, "tcp", server)
		if err == nil {
			return conn, server, nil
		}
		if ctx.Err() != nil {
			// Stopping, not a verdict on the server.
			return nil, "", fmt.Errorf("dial %s: %w", server, ctx.Err())
		}
		lb.markFailed(server, err)
		errs = append(errs, err)
	}
	return nil, "", fmt.Errorf("no API server reachable: %w", errors.Join(errs...))
}

// markFailed sends server to the back of the dial order and closes the
// connections still open to it. A server that ignores new connections (a
// powered-off machine, a network namespace gone) has most likely lost the
// old ones too, which then stay half-open, and client-go only moves its
// watches to another server once their connection breaks: cutting them
// here is what makes failover take seconds instead of a keepalive timeout.
// A server that refuses keeps them for refusedGrace (see there).
func (lb *LoadBalancer) markFailed(server string, err error) {
	lb.mu.Lock()
	if !slices.Contains(lb.servers, server) {
		// Removed while being dialled; SetServers already cut its connections.
		lb.mu.Unlock()
		return
	}
	wasHealthy := !lb.unhealthy[server]
	lb.unhealthy[server] = true
	wasCurrent := lb.current == server
	if wasCurrent {
		lb.current = ""
	}
	var cut []*proxied
	if lb.withinRefusedGrace(server, err) {
		if wasHealthy {
			klog.InfoS("API load balancer: server refuses connections; its open ones may finish", "server", server, "grace", lb.refusedGrace)
		}
	} else {
		cut = lb.takeConns(server)
	}
	lb.mu.Unlock()

	for _, p := range cut {
		p.close()
	}
	if wasHealthy || len(cut) > 0 {
		klog.InfoS("API load balancer: server failed", "server", server, "err", err, "wasCurrent", wasCurrent, "closedConnections", len(cut))
	}
}

// withinRefusedGrace reports whether err is a refusal from server within
// refusedGrace of its first one. lb.mu must be held.
func (lb *LoadBalancer) withinRefusedGrace(server string, err error) bool {
	if !errors.Is(err, syscall.ECONNREFUSED) {
		delete(lb.refusedSince, server)
		return false
	}
	since, ok := lb.refusedSince[server]
	if !ok {
		since = time.Now()
		lb.refusedSince[server] = since
	}
	return time.Since(since) < lb.refusedGrace
}

// markHealthy puts a failed server back in list order. It does not make it
// current: clients stay where they are until that server fails.
func (lb *LoadBalancer) markHealthy(server string) {
	lb.mu.Lock()
	recovered := lb.unhealthy[server]
	delete(lb.unhealthy, server)
	delete(lb.refusedSince, server)
	lb.mu.Unlock()
	if recovered {
		klog.InfoS("API load balancer: server healthy again", "server", server)
	}
}
