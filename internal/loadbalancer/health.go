package loadbalancer

import (
	"context"
	"sync"
	"time"
)

// checkHealth probes servers every lb.healthInterval until ctx ends.
func (lb *LoadBalancer) checkHealth(ctx context.Context) {
	ticker := time.NewTicker(lb.healthInterval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		var wg sync.WaitGroup
		for _, server := range lb.probeTargets() {
			wg.Go(func() { lb.probe(ctx, server) })
		}
		wg.Wait()
	}
}

// probeTargets are the failed servers, so they rejoin the dial order without
// waiting for a client to be refused by all the others, and the current
// one, so that its death is noticed (and its connections cut) even while no
// client opens a new connection: long-lived watches alone never would.
// Healthy servers that are not current carry no connections and are left
// alone.
func (lb *LoadBalancer) probeTargets() []string {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	var targets []string
	for _, server := range lb.servers {
		if server == lb.current || lb.unhealthy[server] {
			targets = append(targets, server)
		}
	}
	return targets
}

// probe is a bare TCP connect: enough to tell a listening API server from a
// dead one without credentials, and the API server does not log the aborted
// TLS handshake.
func (lb *LoadBalancer) probe(ctx context.Context, server string) {
	conn, err := lb.dialer.DialContext(ctx, "tcp", server)
	if err != nil {
		if ctx.Err() == nil {
			lb.markFailed(server, err)
		}
		return
	}
	_ = conn.Close()
	lb.markHealthy(server)
}
