package loadbalancer

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"sync"
	"time"

	"k8s.io/klog/v2"
)

// proxied is one client connection spliced to one API server connection.
type proxied struct {
	client, backend net.Conn
	once            sync.Once
}

// close closes both sides, so that cutting a connection from the balancer
// (server failed, server removed, Stop) reaches the client at once.
func (p *proxied) close() {
	p.once.Do(func() {
		_ = p.client.Close()
		_ = p.backend.Close()
	})
}

// splice copies both ways until either side ends. Closing both then, rather
// than half-closing, means a dead peer on one side can never pin the other
// side open.
func (p *proxied) splice() {
	done := make(chan struct{}, 2)
	copyHalf := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		done <- struct{}{}
	}
	go copyHalf(p.backend, p.client)
	go copyHalf(p.client, p.backend)
	<-done
	p.close()
	<-done
}

// serve accepts until the listener is closed.
func (lb *LoadBalancer) serve(ctx context.Context) {
	var backoff time.Duration
	for {
		conn, err := lb.listener.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || ctx.Err() != nil {
				return
			}
			// Out of file descriptors and the like: wait instead of spinning.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			klog.ErrorS(err, "API load balancer: accept failed", "retryIn", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		lb.wg.Add(1)
		lb.handling.Add(1)
		go func() {
			defer lb.wg.Done()
			defer lb.handling.Add(-1)
			lb.handle(ctx, conn)
		}()
	}
}

// handle connects client to an API server and copies until either ends.
func (lb *LoadBalancer) handle(ctx context.Context, client net.Conn) {
	backend, server, err := lb.dialServer(ctx)
	if err != nil {
		// Per connection, so verbose only: the server failures that cause
		// it are logged once each.
		klog.V(4).InfoS("API load balancer: closing connection", "client", client.RemoteAddr().String(), "err", err)
		_ = client.Close()
		return
	}
	p := &proxied{client: client, backend: backend}
	if !lb.track(server, p) {
		p.close()
		return
	}
	defer lb.untrack(server, p)
	p.splice()
}

// track records p as a connection to server, which thereby becomes the
// current one. It refuses when the balancer stopped or server left the list
// while it was being dialled, since nothing would close p later.
func (lb *LoadBalancer) track(server string, p *proxied) bool {
	lb.mu.Lock()
	if lb.stopped || !slices.Contains(lb.servers, server) {
		lb.mu.Unlock()
		return false
	}
	recovered := lb.unhealthy[server]
	delete(lb.unhealthy, server)
	delete(lb.refusedSince, server)
	previous := lb.current
	lb.current = server
	if lb.conns[server] == nil {
		lb.conns[server] = map[*proxied]struct{}{}
	}
	lb.conns[server][p] = struct{}{}
	lb.mu.Unlock()

	if recovered {
		klog.InfoS("API load balancer: server healthy again", "server", server)
	}
	if previous != server {
		klog.InfoS("API load balancer: using server", "server", server, "previous", previous)
	}
	return true
}

func (lb *LoadBalancer) untrack(server string, p *proxied) {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	delete(lb.conns[server], p)
	if len(lb.conns[server]) == 0 {
		delete(lb.conns, server)
	}
}

// takeConns forgets and returns the connections to server, for the caller
// to close once it released lb.mu. lb.mu must be held.
func (lb *LoadBalancer) takeConns(server string) []*proxied {
	var taken []*proxied
	for p := range lb.conns[server] {
		taken = append(taken, p)
	}
	delete(lb.conns, server)
	return taken
}
